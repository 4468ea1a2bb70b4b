"""The project's quality rule against spammers (units/crowd/quality.py) and the per-worker quality figures of
the annotators page, checked against counts made by hand."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PASSWORD, make_hits, make_job, make_project, make_user
from units.crowd.channels import channel_settings_update
from units.crowd.models import Annotation, Assignment
from units.crowd.quality import quality_rule_apply, worker_checks
from units.crowd.quality_rule import CheckRecord, QualityRule

pytestmark = pytest.mark.django_db


@pytest.fixture
def lab():
    owner = make_user("olga", requester=True)
    project = make_project("Lab A", owner=owner)
    job = make_job(project=project, layers={"conv3": 12}, exemplars_per_unit=2)
    return owner, project, make_hits(job, assignments=3)


def _answered(hits, worker, outcomes: list[tuple[int, int, bool | None]]):
    """One submitted answer per (sentinels shown, sentinels missed, gold outcome) on successive HITs."""
    now = timezone.now()
    for hit, (shown, missed, gold) in zip(hits, outcomes):
        a = Assignment.objects.create(hit=hit, worker=worker, status=Assignment.Status.SUBMITTED, accepted_at=now,
                                      deadline=now + timedelta(minutes=5), submitted_at=now, work_seconds=30.0)
        Annotation.objects.create(assignment=a, word="dog", category="object", sentinels_shown=shown,
                                  sentinels_missed=missed, gold_correct=gold)


def test_checks_count_gold_answers_and_sentinels(lab):
    _, project, hits = lab
    worker = make_user("w")
    _answered(hits, worker, [(2, 1, None), (1, 0, True), (0, 0, False), (3, 3, None)])
    # gold: 2 checks, 1 passed; sentinels: 6 shown, 4 missed -> 2 caught
    assert worker_checks(worker_id=worker.pk, project_id=project.pk) == CheckRecord(answers=4, checks=8, passed=3)


def test_the_rule_waits_for_enough_answers_then_blocks_and_rejects_pending_work(lab):
    owner, project, hits = lab
    channel_settings_update(project=project, by=owner, quality_min_pass_rate=0.6, quality_min_answers=5)
    spammer = make_user("spam")
    _answered(hits, spammer, [(1, 1, None)] * 4)
    assert not quality_rule_apply(worker=spammer, project_id=project.pk)  # 4 answers: not judged yet
    _answered(hits[4:], spammer, [(1, 1, None)])
    assert quality_rule_apply(worker=spammer, project_id=project.pk)
    spammer.annotator_profile.refresh_from_db()
    assert spammer.annotator_profile.is_blocked
    assert "failed 5 of 5 quality checks" in spammer.annotator_profile.blocked_reason
    assert set(Assignment.objects.filter(worker=spammer).values_list("status", flat=True)) == {"rejected"}
    assert not quality_rule_apply(worker=spammer, project_id=project.pk)  # already blocked: nothing twice


def test_a_careful_worker_and_a_project_without_rule_are_left_alone(lab):
    owner, project, hits = lab
    careful, sloppy = make_user("careful"), make_user("sloppy")
    _answered(hits, careful, [(1, 0, None)] * 4 + [(1, 1, None)] * 2)  # 4 of 6 passed: 0.67
    _answered(hits, sloppy, [(1, 1, None)] * 6)
    assert not quality_rule_apply(worker=sloppy, project_id=project.pk)  # no rule set
    channel_settings_update(project=project, by=owner, quality_min_pass_rate=0.6, quality_min_answers=5)
    assert not quality_rule_apply(worker=careful, project_id=project.pk)
    assert quality_rule_apply(worker=sloppy, project_id=project.pk)


def test_a_submit_applies_the_rule(lab):
    from units.crowd.services import annotation_submit

    owner, project, hits = lab
    channel_settings_update(project=project, by=owner, quality_min_pass_rate=0.9, quality_min_answers=1)
    worker = make_user("w", qualified=True)
    # A gold HIT answered wrongly is one failed check out of one.
    unit = hits[0].unit
    unit.is_gold, unit.gold_word, unit.gold_category = True, "cat", "object"
    unit.save(update_fields=["is_gold", "gold_word", "gold_category"])
    now = timezone.now()
    a = Assignment.objects.create(hit=hits[0], worker=worker, accepted_at=now, deadline=now + timedelta(minutes=5))
    annotation_submit(assignment_id=a.pk, worker=worker, word="dog", category="object")
    worker.annotator_profile.refresh_from_db()
    assert worker.annotator_profile.is_blocked
    assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.REJECTED


def test_rule_arithmetic_at_the_threshold():
    rule = QualityRule(min_pass_rate=0.5, min_answers=2)
    assert not rule.blocks(CheckRecord(answers=2, checks=4, passed=2))  # exactly at the threshold passes
    assert rule.blocks(CheckRecord(answers=2, checks=4, passed=1))
    assert not rule.blocks(CheckRecord(answers=9, checks=0, passed=0))  # no check yet: nothing to judge


def test_the_annotators_page_shows_each_workers_quality(client, lab):
    owner, _, hits = lab
    worker = make_user("w")
    _answered(hits, worker, [(2, 1, None), (1, 0, True), (0, 0, False), (1, 0, None)])
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("crowd:annotators")).content.decode()
    row = page[page.index("<td>w</td>"):].split("</tr>")[0]
    # gold 1 of 2 = 50%; sentinels caught 3 of 4 = 75%; 30 s per HIT
    assert '<td class="gold-accuracy">50%</td>' in row and '<td class="sentinel-hits">75%</td>' in row
    assert "<td>30</td>" in row


def test_the_annotators_page_counts_only_the_current_projects_answers(client, lab):
    """A requester of Lab A must not read what an open-crowd annotator did for another project: their
    answers there (all gold wrong, every sentinel missed, 5 minutes a HIT) change nothing on A's page."""
    owner, _, hits = lab
    worker = make_user("w")
    _answered(hits, worker, [(2, 1, None), (1, 0, True), (0, 0, False), (1, 0, None)])
    other_owner = make_user("boris", requester=True)
    other = make_project("Lab B", owner=other_owner)
    other_hits = make_hits(make_job(project=other, layers={"conv3": 4}, exemplars_per_unit=2), assignments=3)
    now = timezone.now()
    for hit in other_hits:
        a = Assignment.objects.create(hit=hit, worker=worker, status=Assignment.Status.SUBMITTED, accepted_at=now,
                                      deadline=now + timedelta(minutes=5), submitted_at=now, work_seconds=300.0)
        Annotation.objects.create(assignment=a, word="cat", category="part", sentinels_shown=3, sentinels_missed=3,
                                  gold_correct=False)
    client.login(username=owner.username, password=PASSWORD)
    page = client.get(reverse("crowd:annotators")).content.decode()
    row = page[page.index("<td>w</td>"):].split("</tr>")[0]
    assert '<td class="gold-accuracy">50%</td>' in row and '<td class="sentinel-hits">75%</td>' in row
    assert "<td>30</td>" in row
    client.logout()
    client.login(username=other_owner.username, password=PASSWORD)
    page = client.get(reverse("crowd:annotators")).content.decode()
    row = page[page.index("<td>w</td>"):].split("</tr>")[0]
    assert '<td class="gold-accuracy">0%</td>' in row and '<td class="sentinel-hits">0%</td>' in row
    assert "<td>300</td>" in row
