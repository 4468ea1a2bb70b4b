"""Many annotators claiming at once on PostgreSQL: no HIT over-assigned, nobody holds a HIT twice."""
import threading
from collections import Counter

import pytest
from django.db import connection, connections

from tests.conftest import need_service
from tests.factories import make_hits, make_job, make_user
from units.crowd.models import Assignment
from units.crowd.services import annotation_submit, assignment_claim

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def run_together(target, args_list):
    barrier = threading.Barrier(len(args_list))
    errors = []

    def wrapped(*args):
        try:
            barrier.wait()
            target(*args)
        except Exception as exc:  # surfaced below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=wrapped, args=args) for args in args_list]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors


def test_a_crowd_claiming_at_once_never_over_assigns_a_hit():
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=2)
    hits = make_hits(job, assignments=2)
    workers = [make_user(f"w{i}", qualified=True) for i in range(16)]

    def work(worker):
        while (a := assignment_claim(worker=worker)) is not None:
            annotation_submit(assignment_id=a.pk, worker=worker, word="seven", category="object")

    # Each worker runs in two threads at once (two tabs): 32 threads against 6 slots.
    run_together(work, [(w,) for w in workers] + [(w,) for w in workers])

    def held():
        return Counter(Assignment.objects.filter(status__in=Assignment.SLOT_STATUSES).values_list("hit_id", flat=True))

    assert max(held().values()) <= 2  # no HIT over its max_assignments
    pairs = Counter(Assignment.objects.values_list("hit_id", "worker_id"))
    assert max(pairs.values()) == 1  # nobody holds a HIT twice
    for worker in workers:  # a calm sweep afterwards finds every remaining slot, and no more
        work(worker)
    assert held() == {h.pk: 2 for h in hits}


def test_simultaneous_first_claims_by_one_worker_give_one_assignment():
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=2)
    make_hits(job, assignments=3)
    worker = make_user("solo", qualified=True)
    got = []
    run_together(lambda: got.append(assignment_claim(worker=worker).pk), [()] * 8)
    assert len(set(got)) == 1
    assert Assignment.objects.filter(worker=worker).count() == 1
