"""On PostgreSQL: a worker retaking an expired HIT (in two tabs) while others claim its last slot."""
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from tests.conftest import need_service
from tests.crowd.test_concurrency import run_together
from tests.factories import make_hits, make_job, make_user
from units.crowd.errors import CrowdError
from units.crowd.models import Assignment
from units.crowd.services import assignment_claim, assignment_retake

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("round_", range(5))
def test_retake_and_claims_at_once_never_give_a_hit_more_slots_or_a_worker_two(round_):
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=2)
    (hit,) = make_hits(job, assignments=2)
    owner, holder = make_user(qualified=True), make_user(qualified=True)
    mine = assignment_claim(worker=owner)
    assignment_claim(worker=holder)  # the other slot stays taken: one free slot after the expiry
    Assignment.objects.filter(pk=mine.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    rivals = [make_user(qualified=True) for _ in range(4)]
    outcomes = []

    def retake():
        try:
            outcomes.append(("retake", assignment_retake(assignment_id=mine.pk, worker=owner).pk))
        except CrowdError as exc:
            outcomes.append(("refused", str(exc)))

    def claim(worker):
        outcomes.append(("claim", getattr(assignment_claim(worker=worker), "pk", None)))

    run_together(lambda job_: job_(), [(retake,), (retake,)] + [(lambda w=w: claim(w),) for w in rivals])
    live = Assignment.objects.filter(hit=hit, status__in=Assignment.SLOT_STATUSES)
    assert live.count() == 2, outcomes  # invariant 1, and the freed slot was used
    assert Assignment.objects.filter(hit=hit, worker=owner).count() == 1  # invariant 2: one row, ever
    retaken = [pk for kind, pk in outcomes if kind == "retake"]
    claimed = [pk for kind, pk in outcomes if kind == "claim" and pk is not None]
    assert len(retaken) + len(claimed) == 1, outcomes  # exactly one winner of the one free slot
    print(round_, sorted(kind for kind, _ in outcomes))
