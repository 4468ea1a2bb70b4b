"""Debounced, incremental aggregation: a busy layer is aggregated once per delay, never
inside the submitting request, never twice at a time, and what is stored equals a from-scratch run."""
import random

import pytest
from django.utils import timezone

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.results import schedule, services
from units.results.models import AggregationRun, AggregationSchedule, AnnotatorSkill, UnitAggregate
from units.results.schedule import aggregation_run_scheduled
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def queued(monkeypatch, settings):
    """The delayed sends, recorded instead of handed to a broker or a timer thread."""
    settings.RESULTS_AGGREGATE_DEBOUNCE = 5.0
    sent = []
    monkeypatch.setattr(schedule, "enqueue_in", lambda delay, name, *args: sent.append((delay, name, args)))
    return sent


def test_many_completed_hits_of_a_layer_queue_one_delayed_run_and_none_runs_in_the_request(
        queued, django_capture_on_commit_callbacks):
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=2)
    hits = make_hits(job, assignments=1)
    for i, hit in enumerate(hits):  # four submits, four commits, four completed HITs
        with django_capture_on_commit_callbacks(execute=True):
            answer(hit, make_user(f"d{i}"), "dog", "object")
    layer_id = hits[0].unit.layer_id
    assert queued == [(5.0, "tasks.results.aggregate_layer", (layer_id, None, True))]
    assert not AggregationRun.objects.exists()  # nothing ran inside the submits
    assert AggregationSchedule.objects.get(layer_id=layer_id).due_at > timezone.now()

    run = aggregation_run_scheduled(layer_id=layer_id)  # the worker, five seconds later
    assert run.n_annotations == 4
    row = AggregationSchedule.objects.get(layer_id=layer_id)
    assert row.due_at is None and row.running_since is None
    extra = make_hits(make_job(layers={"conv3": 1}, exemplars_per_unit=2), assignments=1)
    with django_capture_on_commit_callbacks(execute=True):  # another layer: its own schedule
        answer(extra[0], make_user("e0"), "cat", "object")
    assert len(queued) == 2 and queued[1][2][0] == extra[0].unit.layer_id


def test_a_layer_whose_runs_are_slow_is_aggregated_less_often(queued, django_capture_on_commit_callbacks):
    from datetime import timedelta

    job = make_job(layers={"conv3": 3}, exemplars_per_unit=2)
    hits = make_hits(job, assignments=1)
    layer = job.layer_set.get()
    started = timezone.now() - timedelta(minutes=1)
    # A fast last run (0.2 s): the configured 5 s delay stands (10 x 0.2 = 2 s is shorter).
    AggregationRun.objects.create(
        project_id=layer.job.project_id,
        layer=layer,
        status=AggregationRun.Status.SUCCEEDED,
        started_at=started,
        finished_at=started + timedelta(seconds=0.2),
    )
    with django_capture_on_commit_callbacks(execute=True):
        answer(hits[0], make_user("s0"), "dog", "object")
    assert queued[-1][0] == 5.0
    aggregation_run_scheduled(layer_id=layer.pk)
    # The run just made is the last one now; make it look slow (1.5 s): the next waits 10 x 1.5 = 15 s.
    run = AggregationRun.objects.filter(layer=layer).order_by("-started_at").first()
    AggregationRun.objects.filter(pk=run.pk).update(finished_at=run.started_at + timedelta(seconds=1.5))
    before = timezone.now()
    with django_capture_on_commit_callbacks(execute=True):
        answer(hits[1], make_user("s1"), "cat", "object")
    assert queued[-1][0] == pytest.approx(15.0)
    due = AggregationSchedule.objects.get(layer=layer).due_at
    assert timedelta(seconds=14) < due - before < timedelta(seconds=16)


def test_a_run_due_while_another_run_of_the_layer_is_in_progress_is_queued_again(queued):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=2)
    layer = job.layer_set.get()
    AggregationSchedule.objects.create(layer=layer, running_since=timezone.now())
    assert aggregation_run_scheduled(layer_id=layer.pk) is None
    assert not AggregationRun.objects.exists()
    assert len(queued) == 1  # it will look again after the delay


def test_a_mark_left_by_a_killed_worker_does_not_block_the_layer_for_ever(queued):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=2)
    layer = job.layer_set.get()
    long_ago = timezone.now() - schedule.SCHEDULE_STALE * 2
    AggregationSchedule.objects.create(layer=layer, running_since=long_ago, due_at=long_ago)
    assert schedule.aggregation_schedule(layer_id=layer.pk) is True
    assert aggregation_run_scheduled(layer_id=layer.pk) is not None


def test_a_running_mark_is_taken_for_lost_after_five_times_the_layers_last_run_and_not_before(queued):
    from datetime import timedelta

    job = make_job(layers={"conv3": 1}, exemplars_per_unit=2)
    layer = job.layer_set.get()
    now = timezone.now()
    AggregationRun.objects.create(project_id=layer.job.project_id, layer=layer, status=AggregationRun.Status.SUCCEEDED,
                                  started_at=now - timedelta(hours=1),
                                  finished_at=now - timedelta(hours=1) + timedelta(seconds=30))
    schedule = AggregationSchedule.objects.create(layer=layer, running_since=now - timedelta(seconds=140))
    assert aggregation_run_scheduled(layer_id=layer.pk) is None  # 140 s < 5 x 30 s: maybe still running
    AggregationSchedule.objects.filter(pk=schedule.pk).update(running_since=now - timedelta(seconds=160), due_at=None)
    assert aggregation_run_scheduled(layer_id=layer.pk) is not None  # 160 s > 150 s: its worker died


def _stored():
    aggregates = {a.unit_id: tuple(getattr(a, f) for f in services.AGGREGATE_FIELDS)
                  for a in UnitAggregate.objects.all()}
    skills = {s.worker_id: (s.gold_answered, s.gold_correct, s.gold_accuracy, round(s.skill, 9), round(s.ds_skill, 9))
              for s in AnnotatorSkill.objects.all()}
    return aggregates, skills


def test_incremental_runs_as_answers_arrive_end_equal_to_one_run_from_scratch(settings):
    settings.RESULTS_AGGREGATE_ON_SUBMIT = False  # the test calls the runs itself
    settings.RESULTS_ADAPTIVE_REDUNDANCY = False
    job = make_job(layers={"conv3": 12}, exemplars_per_unit=3)
    layer = job.layer_set.get()
    hits = make_hits(job, assignments=3)
    workers = [make_user(f"inc{i}") for i in range(5)]
    rng = random.Random(7)
    jobs = [(hit, w) for hit in hits for w in rng.sample(workers, 3)]
    rng.shuffle(jobs)
    words = ["dog", "cat", "sky", ""]
    categories = ["object", "object", "scene", "none", "texture"]
    for wave in (jobs[:10], jobs[10:25], jobs[25:]):  # answers arrive; a run after each wave
        for hit, worker in wave:
            answer(hit, worker, rng.choice(words), rng.choice(categories))
        aggregation_run_layer(layer=layer)
    incremental = _stored()
    assert aggregation_run_layer(layer=layer).summary["units_changed"] == 0  # a rerun writes nothing

    UnitAggregate.objects.all().delete()
    AnnotatorSkill.objects.all().delete()
    scratch_run = aggregation_run_layer(layer=layer)
    assert scratch_run.summary["units_changed"] == 12
    assert _stored() == incremental


def test_a_slow_run_that_read_older_answers_does_not_overwrite_a_newer_result(settings):
    settings.RESULTS_AGGREGATE_ON_SUBMIT = False
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=3)
    layer = job.layer_set.get()
    (hit,) = make_hits(job, assignments=3)
    answer(hit, make_user("s1"), "dog", "object")
    newer = aggregation_run_layer(layer=layer)
    # A run that started before `newer` (it read older answers) finishes after it: it must keep out.
    AggregationRun.objects.filter(pk=newer.pk).update(started_at=timezone.now() + schedule.SCHEDULE_STALE)
    answer(hit, make_user("s2"), "cat", "object")
    assert aggregation_run_layer(layer=layer).pk == newer.pk
    assert UnitAggregate.objects.get().n_annotations == 1
