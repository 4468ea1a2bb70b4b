"""Private crowd pools: made and filled by owners, joined by link, used when publishing."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, make_job, make_project, make_user
from units.crowd.errors import PublishError
from units.crowd.publishing import hit_publish
from units.crowd.services import assignment_claim
from units.projects.errors import ProjectError
from units.projects.models import Pool
from units.projects.services import pool_create, pool_join, pool_member_add, pool_member_remove

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab():
    owner = make_user("olga", requester=True)
    return owner, make_project("Lab A", owner=owner)


def test_a_batch_published_to_a_pool_goes_to_its_members_only(lab):
    owner, project = lab
    inside, outside = make_user("ines", qualified=project), make_user("otto", qualified=project)
    pool = pool_create(project=project, name="lab members", created_by=owner)
    pool_member_add(pool=pool, who="ines", added_by=owner)
    job = make_job(project=project, layers={"conv3": 2}, exemplars_per_unit=2)
    batch = hit_publish(layers=job.layer_set.all(), pool=pool, created_by=owner)
    assert batch.pool == pool
    assert assignment_claim(worker=outside) is None
    assert assignment_claim(worker=inside).hit.batch == batch
    pool_member_remove(pool=pool, user=inside, removed_by=owner)
    assert assignment_claim(worker=inside).hit.batch == batch  # the HIT they hold stays theirs
    assert list(project.activities.filter(verb="pool_changed").order_by("id").values_list("summary", flat=True)) == [
        "pool lab members created", "ines added to pool lab members", "ines removed from pool lab members"]


def test_another_projects_pool_is_refused_when_publishing(lab):
    owner, project = lab
    other = make_project("Lab B", owner=make_user("bob", requester=True))
    foreign = Pool.objects.create(project=other, name="theirs")
    job = make_job(project=project, layers={"conv3": 1}, exemplars_per_unit=1)
    with pytest.raises(PublishError, match="pool of the layers' project"):
        hit_publish(layers=job.layer_set.all(), pool=foreign, created_by=owner)


def test_the_publish_page_offers_the_projects_pools_and_refuses_others(client, lab):
    owner, project = lab
    mine = Pool.objects.create(project=project, name="mine")
    theirs = Pool.objects.create(project=make_project("Lab B"), name="theirs")
    job = make_job(project=project, layers={"conv3": 1}, exemplars_per_unit=1)
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("publish")).content.decode()
    assert "mine" in page and "theirs" not in page
    data = {"layers": [job.layer_set.get().pk], "assignments_per_hit": 1, "reward": "0.05", "lifetime_hours": 1,
            "assignment_minutes": 5, "auto_approval_hours": 1, "exemplars_shown": 1, "sentinels": 0,
            "pool": theirs.pk}
    assert client.post(reverse("publish"), data).status_code == 200  # "not one of the choices"
    assert not job.layer_set.get().units.filter(hits__isnull=False).exists()
    data["pool"] = mine.pk
    assert client.post(reverse("publish"), data).status_code == 302
    assert set(job.layer_set.get().units.values_list("hits__batch__pool", flat=True)) == {mine.pk}


def test_an_annotator_joins_a_pool_by_its_link_and_unknown_links_are_404(client, lab):
    owner, project = lab
    pool = pool_create(project=project, name="signup", created_by=owner)
    newcomer = make_user("nina", qualified=True)
    client.login(username=newcomer.username, password=PASSWORD)
    assert client.get(reverse("projects:pool_join", args=["nope"])).status_code == 404
    assert client.post(reverse("projects:pool_join", args=[pool.token])).status_code == 302
    assert list(pool.members.all()) == [newcomer]
    with pytest.raises(ProjectError):
        pool_join(token="nope", user=newcomer)


def test_only_owners_manage_pools(client, lab):
    owner, project = lab
    requester = make_user("rita2")
    project.memberships.create(user=requester, role="requester")
    client.login(username=requester.username, password=PASSWORD)
    assert client.post(reverse("projects:pool_new", args=[project.pk]), {"name": "x"}).status_code == 403
    client.login(username=owner.username, password=PASSWORD)
    assert client.post(reverse("projects:pool_new", args=[project.pk]), {"name": "x"}).status_code == 302
    assert project.pools.get().name == "x"


def test_an_annotators_start_page_lists_their_work_and_earnings_per_project(client, lab):
    from django.utils import timezone

    from units.crowd.models import Assignment
    from tests.factories import make_hits

    owner, project = lab
    worker = make_user("wes", qualified=True)
    hit = make_hits(make_job(project=project, layers={"conv3": 1}, exemplars_per_unit=1))[0]
    now = timezone.now()
    Assignment.objects.create(hit=hit, worker=worker, status="approved", accepted_at=now, deadline=now,
                              submitted_at=now, approved_at=now)
    client.login(username=worker.username, password=PASSWORD)
    page = client.get(reverse("crowd:home")).content.decode()
    section = page[page.index('id="per-project"'):]
    assert re.search(r"<td>Lab A</td><td>1</td><td>1</td><td>\$0\.05</td>", section), section[:600]
