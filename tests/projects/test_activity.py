"""The activity log: what requesters, reviewers and owners did, shown to owners only, as CSV too."""
from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, make_job, make_user
from units.crowd.models import Annotation, Assignment
from units.crowd.publishing import hit_publish
from units.crowd.review import assignments_review
from units.projects.models import Activity
from units.projects.services import member_invite, member_remove, project_create
from units.results.services import export_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab():
    owner = make_user("olga", requester=True)
    project = project_create(name="Lab A", created_by=owner)
    return owner, project


def _verbs(project) -> list[str]:
    return list(project.activities.order_by("id").values_list("verb", flat=True))


def test_publishing_reviewing_exporting_and_member_changes_are_logged_with_who(lab, annotator):
    from django.utils import timezone

    owner, project = lab
    member_invite(project=project, who=annotator.username, role="viewer", invited_by=owner)
    job = make_job(project=project, layers={"conv3": 2}, exemplars_per_unit=2)
    batch = hit_publish(layers=job.layer_set.all(), created_by=owner)
    hit = batch.hits.first()
    now = timezone.now()
    worker = make_user("wendy", qualified=True)
    a = Assignment.objects.create(hit=hit, worker=worker, status="submitted", accepted_at=now, deadline=now,
                                  submitted_at=now)
    Annotation.objects.create(assignment=a, word="dog", category="object")
    assignments_review(assignment_ids=[a.pk], approve=False, feedback="=HYPERLINK(\"x\")", reviewer=owner)
    export_create(kind="units_csv", job=job, user=owner, background=False)
    member_remove(project=project, user=annotator, removed_by=owner)
    assert _verbs(project) == ["member_added", "published", "rejected", "exported", "member_removed"]
    assert set(project.activities.values_list("actor__username", flat=True)) == {"olga"}


def test_only_owners_see_the_log_and_its_csv_cells_are_formula_safe(client, lab):
    owner, project = lab
    viewer = make_user("vera")
    member_invite(project=project, who="vera", role="viewer", invited_by=owner)
    Activity.objects.create(project=project, actor=owner, verb="exported", summary="=cmd|' /C calc'!A0")
    url = reverse("projects:activity", args=[project.pk])
    client.login(username=viewer.username, password=PASSWORD)
    assert client.get(url).status_code == 403
    assert client.get(url, {"format": "csv"}).status_code == 403
    client.login(username=owner.username, password=PASSWORD)
    assert "added a member" in client.get(url).content.decode()
    response = client.get(url, {"format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["time", "who", "what", "detail"]
    assert rows[1][1:] == ["olga", "exported", "'=cmd|' /C calc'!A0"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_registering_and_dissecting_through_the_services_are_logged(lab, tiny_mixture_dir):
    from tests.factories import make_registered_pipeline

    owner, project = lab
    make_registered_pipeline(tiny_mixture_dir, project=project, created_by=owner)
    assert _verbs(project) == ["registered", "registered", "dissected"]
