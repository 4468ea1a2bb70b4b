"""The load benchmark's seeding over several projects: HITs and annotators spread over 3 projects, the
second a private pool's; a crowd claiming in-process fills every slot, each HIT only by annotators
qualified for its project (and in its pool), and the benchmark's correctness counts say so."""
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from benchmarks.loadtest.checks import correctness
from benchmarks.loadtest.driver import Tally
from benchmarks.loadtest.seed import POOL_PROJECT, loadtest_seed, pool_member
from units.crowd.models import Assignment, Hit, HitBatch, Qualification
from units.crowd.services import annotation_submit, assignment_claim

pytestmark = pytest.mark.django_db

USERS = [f"seed-a{i}" for i in range(6)]


def test_three_projects_one_of_them_a_pool_of_every_third_annotator():
    seeded = loadtest_seed(name="loadtest-t", n_units=31, assignments=2, usernames=USERS, password="pw-123456",
                           projects=3)
    batches = list(HitBatch.objects.filter(pk__in=seeded.batch_ids).order_by("pk"))
    assert [b.hits.count() for b in batches] == [11, 10, 10] and len(seeded.truth) == 31
    assert len({b.project_id for b in batches}) == 3
    assert [b.pool_id is not None for b in batches] == [k == POOL_PROJECT for k in range(3)]
    assert seeded.pool_batch_id == batches[POOL_PROJECT].pk
    members = sorted(batches[POOL_PROJECT].pool.members.values_list("username", flat=True))
    assert members == [u for i, u in enumerate(USERS) if i % 3 == 1] == ["seed-a1", "seed-a4"]
    for i, name in enumerate(USERS):
        projects = set(Qualification.objects.filter(user__username=name).values_list("project_id", flat=True))
        expected = {batches[POOL_PROJECT].project_id} if pool_member(i, 3) else {
            b.project_id for k, b in enumerate(batches) if k != POOL_PROJECT}
        assert projects == expected, name


def test_a_crowd_claiming_in_process_fills_every_slot_within_its_projects_and_pool():
    seeded = loadtest_seed(name="loadtest-u", n_units=12, assignments=2, usernames=USERS, password="pw-123456",
                           projects=3)
    workers = list(get_user_model().objects.filter(username__in=USERS).order_by("username"))
    tally = Tally()
    busy = True
    while busy:  # round-robin, each claim answered at once, until nobody gets a HIT
        busy = False
        for worker in workers:
            assignment = assignment_claim(worker=worker)
            if assignment is None:
                continue
            busy = True
            tally.claimed.append((worker.username, assignment.hit_id, assignment.pk))
            annotation_submit(assignment_id=assignment.pk, worker=worker, word="x", category="object")
            tally.acked.append((assignment.pk, worker.username, assignment.hit_id))
    counts = correctness(batch_ids=seeded.batch_ids, tally=tally)
    assert counts["submitted (2xx)"] == 12 * 2  # every slot of every project filled: nothing left out
    assert all(v == 0 for k, v in counts.items() if k != "submitted (2xx)"), counts
    pool_hits = set(Hit.objects.filter(batch_id=seeded.pool_batch_id).values_list("pk", flat=True))
    for worker_name, hit_id, _ in tally.claimed:
        assert (hit_id in pool_hits) == pool_member(USERS.index(worker_name), 3)

    # The count can fail: a HIT of the pool given to an annotator outside it is counted.
    outsider = workers[0]
    now = timezone.now()
    extra = Hit.objects.filter(pk__in=pool_hits).first()
    Assignment.objects.create(hit=extra, worker=outsider, status="submitted", accepted_at=now,
                              deadline=now + timedelta(minutes=5), submitted_at=now)
    after = correctness(batch_ids=seeded.batch_ids, tally=tally)
    assert after["HITs given outside the annotator's projects or pool"] == 1
