"""The HIT queue: who gets which HIT, when slots free up, and who gets nothing."""
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import make_user
from units.crowd.annotators import annotator_block
from units.crowd.errors import Conflict, NotAllowed, NotFound
from units.crowd.models import Assignment, CrowdSettings, Hit, Skip
from units.crowd.review import assignments_review
from units.crowd.services import (
    annotation_submit,
    assignment_claim,
    assignment_return,
    assignments_reclaim_expired,
    hit_skip,
)

pytestmark = pytest.mark.django_db


def submit(assignment, worker, **extra):
    return annotation_submit(assignment_id=assignment.pk, worker=worker,
                             **{"word": "seven", "category": "object", **extra})


def test_a_qualified_annotator_gets_an_open_hit_with_a_deadline(annotator, hits):
    before = timezone.now()
    assignment = assignment_claim(worker=annotator)
    assert assignment.hit in hits
    assert assignment.status == Assignment.Status.ACCEPTED
    assert before <= assignment.accepted_at <= timezone.now()
    assert assignment.deadline == assignment.accepted_at + timedelta(seconds=600)


def test_a_second_claim_returns_the_unfinished_assignment_instead_of_a_new_one(annotator, hits):
    first = assignment_claim(worker=annotator)
    assert assignment_claim(worker=annotator) == first
    assert Assignment.objects.filter(worker=annotator).count() == 1


def test_an_annotator_never_gets_the_same_hit_twice(annotator, hits):
    seen = []
    while (assignment := assignment_claim(worker=annotator)) is not None:
        seen.append(assignment.hit_id)
        submit(assignment, annotator)
    assert sorted(seen) == sorted(h.pk for h in hits)  # each HIT once, then nothing


def test_a_hit_is_offered_to_no_more_workers_than_it_wants(hits):
    workers = [make_user(qualified=True) for _ in range(5)]
    for worker in workers:
        while (a := assignment_claim(worker=worker)) is not None:
            submit(a, worker)
    for hit in hits:
        assert Assignment.objects.filter(hit=hit).count() == 2  # max_assignments of the fixture
    # 4 HITs x 2 slots = 8 assignments: the fifth worker got nothing after the first four.
    assert Assignment.objects.count() == 8


def test_an_unqualified_annotator_gets_no_hit(hits):
    newcomer = make_user()
    with pytest.raises(NotAllowed, match="qualification"):
        assignment_claim(worker=newcomer)


def test_an_abandoned_assignment_frees_its_slot_when_the_next_claim_looks(annotator, other_annotator, hits):
    Hit.objects.exclude(pk=hits[0].pk).delete()
    hits[0].max_assignments = 1
    hits[0].save(update_fields=["max_assignments"])
    taken = assignment_claim(worker=annotator)
    assert assignment_claim(worker=other_annotator) is None  # the only slot is held
    later = timezone.now() + timedelta(seconds=601)
    reclaimed = assignment_claim(worker=other_annotator, now=later)
    assert reclaimed.hit == hits[0]
    taken.refresh_from_db()
    assert taken.status == Assignment.Status.ABANDONED


def test_the_periodic_reclaim_abandons_only_assignments_past_their_deadline(annotator, other_annotator, hits):
    a = assignment_claim(worker=annotator)
    b = assignment_claim(worker=other_annotator)
    Assignment.objects.filter(pk=b.pk).update(deadline=timezone.now() + timedelta(hours=1))
    assert assignments_reclaim_expired(now=timezone.now() + timedelta(seconds=601)) == 1
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.status, b.status) == (Assignment.Status.ABANDONED, Assignment.Status.ACCEPTED)


def test_a_hit_past_its_lifetime_is_offered_to_nobody(annotator, hits):
    Hit.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert assignment_claim(worker=annotator) is None


def test_a_returned_hit_goes_to_someone_else_but_never_back_to_the_same_worker(annotator, other_annotator, hits):
    Hit.objects.exclude(pk=hits[0].pk).delete()
    hits[0].max_assignments = 1
    hits[0].save(update_fields=["max_assignments"])
    a = assignment_claim(worker=annotator)
    assignment_return(assignment_id=a.pk, worker=annotator)
    a.refresh_from_db()
    assert a.status == Assignment.Status.RETURNED
    assert assignment_claim(worker=annotator) is None
    assert assignment_claim(worker=other_annotator).hit == hits[0]


def test_a_skipped_hit_is_never_offered_again_and_its_slot_is_freed(annotator, other_annotator, hits):
    a = assignment_claim(worker=annotator)
    hit_skip(assignment_id=a.pk, worker=annotator)
    assert Skip.objects.filter(hit=a.hit, worker=annotator).exists()
    nxt = assignment_claim(worker=annotator)
    assert nxt.hit != a.hit
    assert Assignment.objects.filter(hit=a.hit, status__in=Assignment.SLOT_STATUSES).count() == 0


def test_only_the_owner_can_return_an_assignment(annotator, other_annotator, hits):
    a = assignment_claim(worker=annotator)
    with pytest.raises(NotFound, match="no assignment"):
        assignment_return(assignment_id=a.pk, worker=other_annotator)
    submit(a, annotator)
    with pytest.raises(Conflict):
        assignment_return(assignment_id=a.pk, worker=annotator)


def test_a_blocked_annotator_gets_no_more_hits_and_their_open_work_is_freed(annotator, hits):
    a = assignment_claim(worker=annotator)
    assert annotator_block(user=annotator, reason="spam") == 1
    a.refresh_from_db()
    assert a.status == Assignment.Status.ABANDONED
    with pytest.raises(NotAllowed, match="blocked"):
        assignment_claim(worker=annotator)


def test_a_rejection_reopens_the_slot_for_another_worker(annotator, other_annotator, hits):
    Hit.objects.exclude(pk=hits[0].pk).delete()
    hits[0].max_assignments = 1
    hits[0].save(update_fields=["max_assignments"])
    a = assignment_claim(worker=annotator)
    submit(a, annotator)
    assert assignment_claim(worker=other_annotator) is None
    assignments_review(assignment_ids=[a.pk], approve=False, feedback="not a word")
    assert assignment_claim(worker=other_annotator).hit == hits[0]


def test_gold_hits_are_mixed_in_at_the_set_rate(job, hits):
    CrowdSettings.objects.update_or_create(pk=1, defaults={"gold_rate": 0.25})
    CrowdSettings.load()
    Hit.objects.filter(pk__in=[h.pk for h in hits[:2]]).update(is_gold=True)
    worker = make_user(qualified=True)
    order = []
    while (a := assignment_claim(worker=worker)) is not None:
        order.append(a.hit.is_gold)
        submit(a, worker)
    # Rule: gold first while gold_taken < 0.25 * (taken + 1). Worked by hand:
    # taken=0: 0 < .25 -> gold; taken=1 (1 gold): 1 < .5 no; 1 < .75 no; 1 < 1.0 no -> ordinary x2,
    # then only gold is left.
    assert order == [True, False, False, True]


def test_with_no_gold_rate_ordinary_hits_come_first(job, hits):
    CrowdSettings.objects.update_or_create(pk=1, defaults={"gold_rate": 0.0})
    Hit.objects.filter(pk=hits[0].pk).update(is_gold=True)
    worker = make_user(qualified=True)
    for _ in range(len(hits) - 1):  # every ordinary HIT before the gold one
        assignment = assignment_claim(worker=worker)
        assert not assignment.hit.is_gold
        annotation_submit(assignment_id=assignment.pk, worker=worker, word="seven", category="object")
    assert assignment_claim(worker=worker).hit_id == hits[0].pk


def test_a_drained_queue_still_offers_a_slot_held_by_expired_work(annotator, other_annotator, hits, monkeypatch):
    """The exact query (asked when the shortlist by kept status is empty) counts slots, expired work not
    counted: a HIT still marked unassignable because nobody swept its expired assignment is found."""
    from units.crowd import services

    monkeypatch.setattr(services, "_reclaim_due", lambda now: False)  # no global sweep to fix the status first
    Hit.objects.exclude(pk=hits[0].pk).delete()
    Hit.objects.filter(pk=hits[0].pk).update(max_assignments=1)
    taken = assignment_claim(worker=annotator)
    assert Hit.objects.get(pk=hits[0].pk).status == Hit.Status.UNASSIGNABLE
    assert assignment_claim(worker=other_annotator) is None
    later = timezone.now() + timedelta(seconds=601)  # past the 600 s deadline
    claimed = assignment_claim(worker=other_annotator, now=later)
    assert claimed.hit_id == hits[0].pk
    taken.refresh_from_db()
    assert taken.status == Assignment.Status.ABANDONED


@pytest.mark.parametrize("edit", ["more assignments", "delete an assignment", "delete assignments in bulk",
                                  "change an assignment"])
def test_an_admin_edit_that_frees_a_slot_of_a_finished_hit_makes_it_claimable(annotator, other_annotator, hits, edit):
    """A finished (reviewable) HIT is trusted to be full by the claim; an edit in the Django admin sets its
    status from its slots again, as the services do."""
    from django.contrib import admin as django_admin
    from django.test import RequestFactory

    from units.crowd.admin import AssignmentAdmin, HitAdmin

    Hit.objects.exclude(pk=hits[0].pk).delete()
    Hit.objects.filter(pk=hits[0].pk).update(max_assignments=1)
    done = assignment_claim(worker=annotator)
    submit(done, annotator)
    hit = Hit.objects.get(pk=hits[0].pk)
    assert hit.status == Hit.Status.REVIEWABLE
    assert assignment_claim(worker=other_annotator) is None
    request = RequestFactory().post("/admin/")
    request.user = make_user(admin=True)
    if edit == "more assignments":
        hit.max_assignments = 2
        HitAdmin(Hit, django_admin.site).save_model(request, hit, form=None, change=True)
    elif edit == "delete an assignment":
        AssignmentAdmin(Assignment, django_admin.site).delete_model(request, done)
    elif edit == "delete assignments in bulk":
        AssignmentAdmin(Assignment, django_admin.site).delete_queryset(request, Assignment.objects.filter(pk=done.pk))
    else:
        done.status = Assignment.Status.REJECTED
        AssignmentAdmin(Assignment, django_admin.site).save_model(request, done, form=None, change=True)
    assert Hit.objects.get(pk=hits[0].pk).status == Hit.Status.ASSIGNABLE
    assert assignment_claim(worker=other_annotator).hit_id == hits[0].pk
