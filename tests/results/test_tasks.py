"""The aggregation trigger: a submitted assignment re-aggregates its layer after commit, once per transaction."""
from datetime import timedelta
from unittest import mock

import pytest
from django.db import transaction
from django.utils import timezone

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.crowd.models import Assignment
from units.results.models import AggregationRun, UnitAggregate

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


def test_every_submitted_answer_aggregates_its_layer_after_commit(django_capture_on_commit_callbacks):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4)
    hits = make_hits(job, assignments=2)
    with django_capture_on_commit_callbacks(execute=True):
        answer(hits[0], make_user("sig0"), "dog", "object")
    # before the HIT has its second answer: a partial result, one answer
    assert UnitAggregate.objects.get(unit=hits[0].unit).n_annotations == 1
    with django_capture_on_commit_callbacks(execute=True):
        answer(hits[0], make_user("sig1"), "dog", "object")
    aggregate = UnitAggregate.objects.get(unit=hits[0].unit)
    assert (aggregate.crowd_word, aggregate.n_annotations) == ("dog", 2)


def test_a_rejection_reaggregates_and_a_stale_request_is_skipped(django_capture_on_commit_callbacks):
    from tasks.results import aggregate_layer

    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4)
    hits = make_hits(job, assignments=2)
    ann = answer(hits[0], make_user("sig5"), "dog", "object")
    before = timezone.now().isoformat()
    with django_capture_on_commit_callbacks(execute=True):
        ann.assignment.status = Assignment.Status.REJECTED
        ann.assignment.save(update_fields=["status"])
    assert AggregationRun.objects.count() == 1
    assert aggregate_layer(hits[0].unit.layer_id, before) is None  # a later run already covered it


def test_saves_in_one_transaction_enqueue_the_layer_once_and_accepted_work_not_at_all(
        django_capture_on_commit_callbacks):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4)
    hits = make_hits(job, assignments=1)
    with mock.patch("tasks.results.aggregate_layer.delay") as delay:
        with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
            answer(hits[0], make_user("sig2"), "dog", "object")
            answer(hits[1], make_user("sig3"), "cat", "object")
        assert [c.args[0] for c in delay.call_args_list] == [job.layer_set.get().pk]
        delay.reset_mock()
        now = timezone.now()
        with django_capture_on_commit_callbacks(execute=True):
            Assignment.objects.create(hit=hits[1], worker=make_user("sig4"), accepted_at=now,
                                      deadline=now + timedelta(minutes=5))
        delay.assert_not_called()


def test_the_periodic_task_reaggregates_only_layers_with_newer_work():
    from tasks.results import aggregate_stale

    job = make_job(layers={"conv3": 2, "conv2": 2}, exemplars_per_unit=4)
    hits = make_hits(job)
    answer(hits[0], make_user("st1"), "dog", "object")
    assert aggregate_stale() == [hits[0].unit.layer_id]  # eager: it ran the aggregation too
    assert AggregationRun.objects.filter(layer=hits[0].unit.layer).count() == 1
    assert aggregate_stale() == []


def test_the_sweep_redoes_a_run_lost_with_a_killed_worker_and_leaves_a_live_mark_alone():
    from tasks.results import aggregate_stale
    from units.results.models import AggregationSchedule
    from units.results.schedule import SCHEDULE_STALE

    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4)
    hits = make_hits(job)
    layer = hits[0].unit.layer
    answer(hits[0], make_user("k1"), "dog", "object")
    # A run was queued (due 10 s ago is fine: a worker may be late) and its message died with the worker.
    now = timezone.now()
    AggregationSchedule.objects.update_or_create(layer=layer, defaults={"due_at": now - timedelta(seconds=10)})
    AggregationRun.objects.filter(layer=layer).delete()
    assert aggregate_stale() == []  # not yet stale: its worker may still run it
    assert not AggregationRun.objects.filter(layer=layer).exists()
    AggregationSchedule.objects.filter(layer=layer).update(due_at=now - SCHEDULE_STALE - timedelta(seconds=1))
    assert aggregate_stale() == [layer.pk]  # lost: queued again (eager here, so it ran)
    assert AggregationRun.objects.get(layer=layer).n_annotations == 1


def test_a_starting_worker_takes_queued_marks_of_stale_layers_for_lost_but_leaves_a_running_one_alone():
    """kill -9 of a worker takes the delayed messages it had reserved with it; their marks (due in the
    future, not stale) would hold new runs back for over a minute. The sweep sent at start redoes them."""
    from tasks.results import aggregate_stale
    from units.results.models import AggregationSchedule

    job = make_job(layers={"conv3": 2, "conv2": 2}, exemplars_per_unit=4)
    hits = make_hits(job)
    queued, running = hits[0].unit.layer, hits[-1].unit.layer
    assert queued != running
    answer(hits[0], make_user("q1"), "dog", "object")
    answer(hits[-1], make_user("q2"), "cat", "object")
    AggregationRun.objects.all().delete()
    now = timezone.now()
    AggregationSchedule.objects.update_or_create(layer=queued, defaults={"due_at": now + timedelta(seconds=10)})
    AggregationSchedule.objects.update_or_create(layer=running, defaults={"due_at": now + timedelta(seconds=10),
                                                                          "running_since": now})
    assert aggregate_stale() == []  # the periodic sweep trusts a fresh mark: its worker may be alive
    assert aggregate_stale(starting=True) == [queued.pk]  # the start-up sweep does not
    assert AggregationRun.objects.get(layer=queued).n_annotations == 1
    assert not AggregationRun.objects.filter(layer=running).exists()  # a run in progress is left to finish
