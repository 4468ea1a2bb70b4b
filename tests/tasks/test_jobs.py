"""Dissection job tasks: results replaced atomically, shards merged exactly, failures explained."""
import numpy as np
import pytest

from tasks.jobs import dissect_job
from tests.factories import make_hits, make_registered_pipeline
from units.dissection import job_state
from units.dissection.models import DissectionJob, Exemplar, Layer, Unit, UnitConceptScore
from units.dissection.services import DissectionError, job_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def run_job(django_capture_on_commit_callbacks):
    def run(job):
        with django_capture_on_commit_callbacks(execute=True):
            job_start(job=job)
        job.refresh_from_db()
        return job

    return run


def snapshot(job):
    """Every stored number of a job, keyed by (layer, unit), independent of row ids."""
    units = {
        (u.layer.name, u.index): (u.threshold, u.max_activation, u.iou_label, u.iou_category, round(u.iou_score, 6))
        for u in Unit.objects.filter(layer__job=job).select_related("layer")
    }
    exemplars = sorted(
        (e.unit.layer.name, e.unit.index, e.kind, e.rank, e.image_index, round(e.score, 5))
        for e in Exemplar.objects.filter(unit__layer__job=job).select_related("unit__layer")
    )
    scores = sorted(
        (s.unit.layer.name, s.unit.index, s.rank, s.concept.name, round(s.iou, 6))
        for s in UnitConceptScore.objects.filter(unit__layer__job=job).select_related("unit__layer", "concept")
    )
    return units, exemplars, scores


def test_running_a_job_twice_leaves_one_identical_set_of_rows(tiny_mixture_dir, media_root, run_job):
    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv2", "conv3"], top_k=3))
    assert job.status == "succeeded", job.error_message
    first = snapshot(job)
    job = run_job(job)
    assert job.status == "succeeded" and job.attempts == 2
    assert snapshot(job) == first
    assert Layer.objects.filter(job=job).count() == 2
    assert Unit.objects.filter(layer__job=job).count() == 20 + 10
    # Pictures of the first run are gone; those of the second are referenced and present.
    assert not (media_root / "jobs" / str(job.pk) / "a1").exists()
    assert all((media_root / e.picture).is_file() for e in Exemplar.objects.filter(unit__layer__job=job))


def test_a_redelivered_task_of_a_finished_attempt_changes_nothing(tiny_mixture_dir, media_root, run_job):
    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], top_k=2))
    before = snapshot(job), list(Unit.objects.filter(layer__job=job).values_list("pk", flat=True))
    dissect_job.apply(args=(job.pk, job.attempts))  # as if the broker delivered it again
    job.refresh_from_db()
    assert job.status == "succeeded"
    assert (snapshot(job), list(Unit.objects.filter(layer__job=job).values_list("pk", flat=True))) == before


def test_a_task_of_an_older_attempt_is_ignored(tiny_mixture_dir, media_root, run_job):
    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], top_k=2))
    DissectionJob.objects.filter(pk=job.pk).update(status="queued", attempts=5)
    dissect_job.apply(args=(job.pk, 4))
    job.refresh_from_db()
    assert job.status == "queued" and job.attempts == 5


def test_two_shards_give_exactly_the_numbers_of_one_sweep(tiny_mixture_dir, media_root, run_job):
    whole = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv1", "conv3"], top_k=4, shards=1))
    sharded = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv1", "conv3"], top_k=4, shards=3))
    assert whole.status == sharded.status == "succeeded", (whole.error_message, sharded.error_message)
    units_a, ex_a, scores_a = snapshot(whole)
    units_b, ex_b, scores_b = snapshot(sharded)
    assert units_a.keys() == units_b.keys()
    for key in units_a:
        a, b = units_a[key], units_b[key]
        assert np.isclose(a[0], b[0], rtol=1e-6, atol=1e-7), key  # threshold
        assert np.isclose(a[1], b[1], rtol=1e-6), key
        assert a[2:] == b[2:], key  # label, category, IoU
    assert [e[:5] for e in ex_a] == [e[:5] for e in ex_b]
    assert scores_a == scores_b
    assert sharded.progress == 1.0


@pytest.fixture(scope="module")
def mixture_that_overflows(tmp_path_factory):
    """97 images, so that a sweep (whole, or the first of 3 shards) ends on a batch of one image: a threshold's
    kept set (0.5% of each unit's values) overflows in the first batches and the last one's newcomers stay buffered."""
    from tests.factories import write_tiny_mixture

    return write_tiny_mixture(tmp_path_factory.mktemp("mixture97") / "m", n_images=97, seed=4)


@pytest.mark.parametrize("shards", [1, 3])
def test_a_job_whose_threshold_buffers_overflow_succeeds_whole_and_sharded_with_the_same_numbers(
    mixture_that_overflows, media_root, run_job, pending_at_state, shards,
):
    job = run_job(make_registered_pipeline(mixture_that_overflows, layers=["conv1", "conv3"], top_k=4, shards=shards))
    assert job.status == "succeeded", job.error_message
    assert any(dropped and pending for dropped, pending, _ in pending_at_state), "the data must take that path"
    other = run_job(make_registered_pipeline(mixture_that_overflows, layers=["conv1", "conv3"], top_k=4,
                                             shards=4 - shards))  # 3 against 1, 1 against 3
    assert other.status == "succeeded", other.error_message
    units_a, ex_a, scores_a = snapshot(job)
    units_b, ex_b, scores_b = snapshot(other)
    assert units_a.keys() == units_b.keys() and len(units_a) == 10 + 10
    for key in units_a:
        assert np.isclose(units_a[key][0], units_b[key][0], rtol=1e-6, atol=1e-7), key  # threshold
        assert units_a[key][2:] == units_b[key][2:], key
    assert [e[:5] for e in ex_a] == [e[:5] for e in ex_b]
    assert scores_a == scores_b


def _with_layers(job, layers: list[str]):
    """The job's layers changed behind the service's back (a row written by other means than job_create):
    the runner's own check is what stands then."""
    type(job).objects.filter(pk=job.pk).update(layers=layers)
    job.refresh_from_db()
    return job


def test_an_unknown_layer_is_refused_before_any_job_exists(tiny_mixture_dir, media_root):
    from units.dissection.services import DissectionError

    before = DissectionJob.objects.count()
    with pytest.raises(DissectionError, match="Layer 'conv9' is not in the model \\(close names: conv3"):
        make_registered_pipeline(tiny_mixture_dir, layers=["conv9"])
    assert DissectionJob.objects.count() == before


def test_an_unknown_layer_fails_the_job_naming_the_valid_layers(tiny_mixture_dir, media_root, run_job):
    job = run_job(_with_layers(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"]), ["conv9"]))
    assert job.status == "failed"
    assert "conv9" in job.error_message
    assert "conv1" in job.error_message and "conv3" in job.error_message
    assert not Layer.objects.filter(job=job).exists()


def test_an_unknown_layer_fails_a_sharded_job_once_before_any_shard_runs(tiny_mixture_dir, media_root, run_job):
    job = run_job(_with_layers(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], shards=2), ["fc9"]))
    assert job.status == "failed" and "fc9" in job.error_message
    assert not (media_root / "jobs" / str(job.pk) / "a1" / "shards" / "stats-0.pt").exists()


def test_a_dataset_broken_after_registration_fails_the_job_naming_the_file(tmp_path, media_root, run_job):
    from tests.factories import write_tiny_mixture

    data = write_tiny_mixture(tmp_path / "broken", n_images=6)
    job = make_registered_pipeline(data, layers=["conv3"])
    (data / "label.csv").unlink()
    job = run_job(job)
    assert job.status == "failed"
    assert "label.csv" in job.error_message


def test_a_job_with_hits_cannot_be_rerun_and_a_running_job_cannot_be_started_twice(
        tiny_mixture_dir, media_root, run_job):
    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], top_k=2))
    make_hits(job)
    with pytest.raises(DissectionError, match="published HITs"):
        job_start(job=job)
    other = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"])
    DissectionJob.objects.filter(pk=other.pk).update(status="running")
    with pytest.raises(DissectionError, match="running already"):
        job_start(job=other)


def test_progress_never_moves_backwards_and_shard_increments_stop_at_the_phase_end(tiny_mixture_dir):
    job = make_registered_pipeline(tiny_mixture_dir)
    DissectionJob.objects.filter(pk=job.pk).update(status="running", attempts=1)
    job_state.job_set_progress(job_id=job.pk, attempt=1, stage="sweep", progress=0.5)
    job_state.job_set_progress(job_id=job.pk, attempt=1, stage="sweep", progress=0.3)
    job.refresh_from_db()
    assert job.progress == 0.5
    DissectionJob.objects.filter(pk=job.pk).update(progress=0.0)
    for _ in range(3):  # three shards each adding a third of the 0..0.4 phase, then a retried one
        job_state.job_add_progress(job_id=job.pk, attempt=1, stage="s", delta=0.4 / 3, cap=0.4)
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.4)
    job_state.job_add_progress(job_id=job.pk, attempt=1, stage="s", delta=0.4 / 3, cap=0.4)
    job.refresh_from_db()
    assert job.progress == pytest.approx(0.4)


def test_mixture_units_with_a_clear_digit_label_become_gold(tiny_mixture_dir, media_root, run_job):
    from units.dissection.job_results import GOLD_MIN_IOU

    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv1", "conv2", "conv3"], top_k=2))
    for unit in Unit.objects.filter(layer__job=job):
        expected = unit.iou_label.isdigit() and unit.iou_score >= GOLD_MIN_IOU
        assert unit.is_gold == expected
        if unit.is_gold:
            assert (unit.gold_word, unit.gold_category) == (unit.iou_label, "object")


def test_an_unexpected_error_fails_the_job_with_a_short_message(tiny_mixture_dir, media_root, run_job, monkeypatch):
    def explode(job_id, attempt):
        raise RuntimeError("boom")

    monkeypatch.setattr("units.dissection.runner.run_whole", explode)
    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"]))
    assert job.status == "failed"
    assert job.error_message == "Internal error (RuntimeError: boom); see the worker log."


def test_a_transient_database_error_is_retried_and_the_job_then_succeeds(tiny_mixture_dir, media_root, run_job,
                                                                          monkeypatch):
    from django.db import OperationalError

    from units.dissection import runner

    real = runner.run_whole
    calls = []

    def flaky(job_id, attempt):
        calls.append(job_id)
        if len(calls) == 1:
            raise OperationalError("server closed the connection unexpectedly")
        return real(job_id, attempt)

    monkeypatch.setattr("units.dissection.runner.run_whole", flaky)
    job = run_job(make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], top_k=2))
    assert len(calls) == 2
    assert job.status == "succeeded", job.error_message


def test_a_redelivered_last_shard_does_not_start_the_merge_a_second_time(tiny_mixture_dir, media_root):
    from units.dissection import runner

    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"], shards=2)
    DissectionJob.objects.filter(pk=job.pk).update(status="running", attempts=1, stage=job_state.STAGE_STATS)
    assert runner.run_collect_stats(job.pk, 1, 0) is False  # shard 1 has not finished yet
    assert runner.run_collect_stats(job.pk, 1, 1) is True  # the set is complete: this call merges
    assert runner.run_collect_stats(job.pk, 1, 1) is False  # the same shard delivered again
    assert runner.run_collect_stats(job.pk, 1, 0) is False
    job.refresh_from_db()
    assert job.stage == job_state.STAGE_MERGE_STATS
    shards = media_root / "jobs" / str(job.pk) / "a1" / "shards"
    assert sorted(p.name for p in shards.iterdir()) == ["stats-0.pt", "stats-1.pt"]
