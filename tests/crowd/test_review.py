"""Review: approve and reject (one or many), automatic approval, the periodic tasks."""
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from tasks.crowd import auto_approve_assignments, reclaim_expired_assignments
from units.crowd.errors import Conflict, CrowdError, InvalidAnswer
from units.crowd.models import Assignment, Hit
from units.crowd.review import assignments_auto_approve, assignments_review, unit_mark_gold, unit_unmark_gold
from units.crowd.selectors import annotator_stats
from units.crowd.services import annotation_submit, assignment_claim

pytestmark = pytest.mark.django_db


def do_hits(worker, n):
    done = []
    for _ in range(n):
        a = assignment_claim(worker=worker)
        annotation_submit(assignment_id=a.pk, worker=worker, word="seven", category="object")
        done.append(a)
    return done


def test_bulk_approval_approves_every_selected_assignment(annotator, hits):
    done = do_hits(annotator, 3)
    assert assignments_review(assignment_ids=[a.pk for a in done], approve=True) == 3
    assert set(Assignment.objects.values_list("status", flat=True)) == {Assignment.Status.APPROVED}
    assert all(a.approved_at for a in Assignment.objects.all())


def test_a_rejection_needs_feedback_and_stores_it(annotator, hits):
    (a,) = do_hits(annotator, 1)
    with pytest.raises(InvalidAnswer):
        assignments_review(assignment_ids=[a.pk], approve=False, feedback="  ")
    assignments_review(assignment_ids=[a.pk], approve=False, feedback="The word names the background.")
    a.refresh_from_db()
    assert (a.status, a.feedback) == (Assignment.Status.REJECTED, "The word names the background.")


def test_reviewing_work_that_is_not_submitted_changes_nothing(annotator, hits):
    done = do_hits(annotator, 1)
    open_one = assignment_claim(worker=annotator)
    with pytest.raises(Conflict, match=str(open_one.pk)):
        assignments_review(assignment_ids=[done[0].pk, open_one.pk], approve=True)
    done[0].refresh_from_db()
    assert done[0].status == Assignment.Status.SUBMITTED  # all or nothing
    with pytest.raises(CrowdError, match="No assignment"):
        assignments_review(assignment_ids=[999999], approve=True)


def test_submitted_work_is_approved_automatically_after_the_hits_delay(annotator, hits):
    Hit.objects.update(auto_approval_delay_seconds=3600)
    early, late = do_hits(annotator, 2)
    Assignment.objects.filter(pk=early.pk).update(auto_approve_at=timezone.now() - timedelta(seconds=1))
    assert assignments_auto_approve() == 1
    early.refresh_from_db()
    late.refresh_from_db()
    assert (early.status, late.status) == (Assignment.Status.APPROVED, Assignment.Status.SUBMITTED)
    assert assignments_auto_approve(now=timezone.now() + timedelta(seconds=3601)) == 1


def test_the_periodic_tasks_run_the_services(annotator, hits):
    a = assignment_claim(worker=annotator)
    Assignment.objects.filter(pk=a.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    assert reclaim_expired_assignments.delay().get() == 1
    (b,) = do_hits(annotator, 1)
    Assignment.objects.filter(pk=b.pk).update(auto_approve_at=timezone.now() - timedelta(seconds=1))
    assert auto_approve_assignments.delay().get() == 1


def test_the_home_counts_follow_the_reviews(annotator, hits):
    a, b, c = do_hits(annotator, 3)
    assignments_review(assignment_ids=[a.pk, b.pk], approve=True)
    assignments_review(assignment_ids=[c.pk], approve=False, feedback="no")
    stats = annotator_stats(annotator)
    assert (stats.submitted, stats.pending, stats.approved, stats.rejected) == (3, 0, 2, 1)
    assert stats.earned == 2 * Hit.objects.get(pk=a.hit_id).reward == Decimal("0.10")


def test_a_requester_can_mark_and_unmark_a_gold_unit(hits):
    unit = unit_mark_gold(unit_id=hits[0].unit_id, word=" seven | 7 ", category="object")
    assert (unit.is_gold, unit.gold_word, unit.gold_category) == (True, "seven | 7", "object")
    assert Hit.objects.get(pk=hits[0].pk).is_gold
    with pytest.raises(InvalidAnswer):
        unit_mark_gold(unit_id=hits[0].unit_id, word="", category="object")
    unit_unmark_gold(unit_id=hits[0].unit_id)
    assert not Hit.objects.get(pk=hits[0].pk).is_gold
