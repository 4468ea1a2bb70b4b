"""Qualification and gold per project, tried by the other project's people: an annotator qualified for A
never gets B's HITs, B's requester cannot touch A's gold, a failure at A's test does not delay B's."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_hits, make_job, make_project, make_user
from units.crowd.models import HitBatch, Qualification, QualificationSettings
from units.crowd.qualification import qualification_start, qualification_state, qualification_submit
from units.crowd.services import assignment_claim
from units.dissection.models import Unit
from units.projects.models import Pool

pytestmark = pytest.mark.django_db


def gold_all(job, word_of=str):
    for unit in Unit.objects.filter(layer__job=job):
        unit.is_gold, unit.gold_word, unit.gold_category = True, word_of(unit.index), "object"
        unit.save()
    return set(Unit.objects.filter(layer__job=job).values_list("pk", flat=True))


@pytest.fixture
def two():
    """Projects A and B, each with a requester, an open batch of 4 HITs and 4 gold units."""
    rita, bob = make_user("rita", requester=True), make_user("bob", requester=True)
    alpha, beta = make_project("alpha", owner=rita), make_project("beta", owner=bob)
    jobs = {p: make_job(project=p, layers={"conv3": 4}, exemplars_per_unit=3) for p in (alpha, beta)}
    hits = {p: make_hits(job, assignments=2) for p, job in jobs.items()}
    gold = {p: gold_all(job) for p, job in jobs.items()}
    for p in (alpha, beta):
        QualificationSettings.objects.create(project=p, size=4, pass_fraction=1.0, cooldown_minutes=30)
    return {"rita": rita, "bob": bob, "alpha": alpha, "beta": beta, "hits": hits, "gold": gold}


def right_answers(attempt, right=True):
    units = Unit.objects.in_bulk(attempt.unit_ids)
    return {pk: (units[pk].gold_word if right else "wrong", "object") for pk in attempt.unit_ids}


def test_passing_a_projects_test_qualifies_for_that_project_only(two):
    alpha, beta = two["alpha"], two["beta"]
    QualificationSettings.objects.filter(project=alpha).update(size=2)
    annie = make_user("annie")
    attempt = qualification_start(user=annie, project=alpha)
    assert len(attempt.unit_ids) == 2 and set(attempt.unit_ids) <= two["gold"][alpha]  # A's gold only
    assert qualification_submit(attempt=attempt, answers=right_answers(attempt)).passed
    assert list(Qualification.objects.filter(user=annie).values_list("project", flat=True)) == [alpha.pk]
    taken = set()
    while (a := assignment_claim(worker=annie)) is not None:
        taken.add(a.hit_id)
        a.status = "submitted"
        a.save(update_fields=["status"])
    # Trying to break it: qualified for A, every HIT of B stays out of reach (A's HITs whose units were in
    # the test are never offered either: their answer is known).
    assert taken and taken <= {h.pk for h in two["hits"][alpha]}
    assert not taken & {h.pk for h in two["hits"][beta]}


def test_a_failure_at_one_projects_test_does_not_delay_another(two):
    alpha, beta = two["alpha"], two["beta"]
    annie = make_user("annie")
    now = timezone.now()
    failed = qualification_start(user=annie, project=alpha, now=now)
    qualification_submit(attempt=failed, answers=right_answers(failed, right=False), now=now)
    assert qualification_state(annie, alpha, now=now).retake_at == now + timedelta(minutes=2)
    assert qualification_state(annie, beta, now=now).can_take
    other = qualification_start(user=annie, project=beta, now=now)
    assert set(other.unit_ids) == two["gold"][beta] and other.project == beta


def test_an_annotator_sees_the_tests_of_projects_that_offer_them_work_only(two, client):
    alpha, beta = two["alpha"], two["beta"]
    pool = Pool.objects.create(project=beta, name="closed")
    HitBatch.objects.filter(project=beta).update(pool=pool)  # B offers nothing to the open crowd
    annie = make_user("annie")
    client.force_login(annie)
    listing = client.get(reverse("crowd:qualification")).content.decode()
    assert reverse("crowd:qualification_test", args=[alpha.pk]) in listing and "beta" not in listing
    assert client.get(reverse("crowd:qualification_test", args=[beta.pk])).status_code == 404
    assert client.post(reverse("crowd:qualification_test", args=[beta.pk]), {}).status_code == 404
    assert client.get(reverse("crowd:qualification_test", args=[987654])).status_code == 404
    assert not annie.qualification_attempts.exists()
    pool.members.add(annie)  # in B's pool: B's test is theirs to take
    page = client.get(reverse("crowd:qualification_test", args=[beta.pk])).content.decode()
    assert "Qualification test: beta" in page and 'name="word_' in page
    # The home page lists both, each with its own state.
    home = client.get(reverse("crowd:home")).content.decode()
    assert f'id="take-qualification-{alpha.pk}"' in home and f'id="qualification-{beta.pk}"' in home


def test_the_annotator_home_says_for_which_projects_they_are_qualified(two, client):
    annie = make_user("annie", qualified=two["alpha"])
    client.force_login(annie)
    home = client.get(reverse("crowd:home")).content.decode()
    alpha_row = home.split(f'id="qualification-{two["alpha"].pk}"')[1].split("</tr>")[0]
    beta_row = home.split(f'id="qualification-{two["beta"].pk}"')[1].split("</tr>")[0]
    assert "qualified" in alpha_row and "Take the test" in beta_row
    assert 'id="start-working"' in home


def test_the_requester_of_b_cannot_mark_or_unmark_as_gold_a_unit_of_a(two, client):
    alpha = two["alpha"]
    unit = Unit.objects.filter(layer__job__project=alpha).first()
    before = list(Unit.objects.filter(layer__job__project=alpha).order_by("pk").values_list(
        "pk", "is_gold", "gold_word", "gold_category"))
    client.force_login(two["bob"])
    assert client.post(reverse("crowd:gold"), {"unit_id": unit.pk, "gold_word": "cat",
                                               "gold_category": "scene"}).status_code == 404
    assert client.post(reverse("crowd:gold"), {"unmark": unit.pk}).status_code == 404
    page = client.get(reverse("crowd:gold")).content.decode()
    assert "Gold units and qualification: beta" in page and f'name="unmark" value="{unit.pk}"' not in page
    assert list(Unit.objects.filter(layer__job__project=alpha).order_by("pk").values_list(
        "pk", "is_gold", "gold_word", "gold_category")) == before
    # Their own project's unit they may change.
    own = Unit.objects.filter(layer__job__project=two["beta"]).first()
    assert client.post(reverse("crowd:gold"), {"unmark": own.pk}).status_code == 302
    assert not Unit.objects.get(pk=own.pk).is_gold


def test_qualification_settings_are_each_projects_own(two, client):
    alpha, beta = two["alpha"], two["beta"]
    client.force_login(two["bob"])
    data = {"settings": "1", "q-size": 2, "q-pass_fraction": 0.5, "q-cooldown_minutes": 10}
    assert client.post(reverse("crowd:gold"), data).status_code == 302
    assert QualificationSettings.objects.filter(project=beta).values_list(
        "size", "pass_fraction", "cooldown_minutes").get() == (2, 0.5, 10)
    assert QualificationSettings.objects.filter(project=alpha).values_list(
        "size", "pass_fraction", "cooldown_minutes").get() == (4, 1.0, 30)
    assert len(qualification_start(user=make_user(), project=beta).unit_ids) == 2
    # Bad values: said on the page, nothing saved.
    page = client.post(reverse("crowd:gold"), {**data, "q-pass_fraction": 1.5, "q-size": 0})
    assert page.status_code == 200 and "between 0 (exclusive) and 1" in page.content.decode()
    assert QualificationSettings.objects.get(project=beta).size == 2
    # A reviewer of B (no WORK) is sent away, not shown the forms.
    reviewer = make_user("rev")
    beta.memberships.create(user=reviewer, role="reviewer")
    client.force_login(reviewer)
    assert client.post(reverse("crowd:gold"), data).status_code == 302
    assert QualificationSettings.objects.get(project=beta).size == 2


def test_the_requester_of_b_cannot_qualify_or_unqualify_for_a(two, client):
    alpha, beta = two["alpha"], two["beta"]
    annie, kept = make_user("annie"), make_user("kept", qualified=alpha)
    client.force_login(two["bob"])
    url = reverse("crowd:annotator_action", args=[annie.pk])
    assert client.post(url, {"action": "qualify", "project": alpha.pk}).status_code == 404
    assert client.post(reverse("crowd:annotator_action", args=[kept.pk]),
                       {"action": "unqualify", "project": alpha.pk}).status_code == 404
    assert client.post(url, {"action": "qualify"}).status_code == 404  # no project named: none assumed
    assert client.post(url, {"action": "qualify", "project": 2**70}).status_code == 302  # refused by the form
    assert not Qualification.objects.filter(user=annie).exists()
    assert Qualification.objects.filter(user=kept, project=alpha).exists()
    assert client.post(url, {"action": "qualify", "project": beta.pk}).status_code == 302
    assert list(Qualification.objects.filter(user=annie).values_list("project", flat=True)) == [beta.pk]
