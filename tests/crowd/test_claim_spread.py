"""The claim path under a crowd: claims spread over the open HITs, no global sweep per
claim, and a HIT whose kept status is stale is still found by the exact fallback."""
from collections import Counter
from datetime import timedelta

from django.utils import timezone

from tests.factories import make_hits, make_job, make_user
from units.crowd import services
from units.crowd.models import Assignment, Hit
from units.crowd.services import annotation_submit, assignment_claim


def test_a_crowd_claiming_one_after_another_spreads_over_many_hits(db):
    job = make_job(layers={"conv3": 60}, exemplars_per_unit=1)
    make_hits(job, assignments=5)
    workers = [make_user(qualified=True) for _ in range(20)]
    claimed = Counter(assignment_claim(worker=w).hit_id for w in workers)
    # By id order the 20 would have filled the first 4 HITs, 5 each; picked at random from the
    # open window they land on many different HITs (P(<= 8 distinct) is below 1e-9).
    assert len(claimed) > 8
    assert max(claimed.values()) <= 5


def test_a_hit_whose_status_says_full_is_still_offered_when_a_slot_is_free(db):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1)
    (hit,) = make_hits(job, assignments=2)
    Hit.objects.filter(pk=hit.pk).update(status=Hit.Status.UNASSIGNABLE)  # stale kept status
    assignment = assignment_claim(worker=make_user(qualified=True))
    assert assignment is not None and assignment.hit_id == hit.pk


def test_an_expired_assignment_frees_its_slot_under_the_hit_lock_without_a_global_sweep(db, monkeypatch):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=1)
    first, other = make_hits(job, assignments=1, duration_s=60)
    late, slow = make_user(qualified=True), make_user(qualified=True)
    gone = assignment_claim(worker=late)
    elsewhere = assignment_claim(worker=slow)
    # No sweep of the whole table in this claim: only the HIT it locks is tidied.
    monkeypatch.setattr(services, "_reclaim_due", lambda now: False)
    later = timezone.now() + timedelta(seconds=61)
    taken = assignment_claim(worker=make_user(qualified=True), now=later)
    assert taken is not None and taken.hit_id in (first.pk, other.pk)
    statuses = dict(Assignment.objects.filter(pk__in=[gone.pk, elsewhere.pk]).values_list("pk", "status"))
    freed = gone.pk if taken.hit_id == gone.hit_id else elsewhere.pk
    assert statuses[freed] == Assignment.Status.ABANDONED
    kept = elsewhere.pk if freed == gone.pk else gone.pk
    assert statuses[kept] == Assignment.Status.ACCEPTED  # the other HIT was not swept


def test_the_kept_status_follows_the_claims_and_submits(db):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1)
    (hit,) = make_hits(job, assignments=2)
    a, b = make_user(qualified=True), make_user(qualified=True)
    first = assignment_claim(worker=a)
    hit.refresh_from_db()
    assert hit.status == Hit.Status.ASSIGNABLE
    second = assignment_claim(worker=b)
    hit.refresh_from_db()
    assert hit.status == Hit.Status.UNASSIGNABLE
    annotation_submit(assignment_id=first.pk, worker=a, word="seven", category="object")
    annotation_submit(assignment_id=second.pk, worker=b, word="seven", category="object")
    hit.refresh_from_db()
    assert hit.status == Hit.Status.REVIEWABLE
    assert assignment_claim(worker=make_user(qualified=True)) is None
