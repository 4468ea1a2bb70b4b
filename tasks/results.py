"""Celery tasks (results). Pass ids, fetch rows inside the task.

Aggregation is triggered by a post_save signal on Assignment (units/results/signals.py): when a
HIT's last assignment is submitted, or an answer is rejected, a run of its layer is queued after the
transaction commits, debounced (results.schedule.aggregation_schedule: at most one queued and one
running per layer, RESULTS_AGGREGATE_DEBOUNCE seconds after the first answer); `aggregate_stale`
(periodic, every AGGREGATE_SWEEP_SECONDS, and when a worker starts) catches anything a lost message
or a killed worker missed, through the same debounce marks; requesters can also
aggregate on demand (page button, API, `manage.py aggregate`).
"""
import logging

from celery import shared_task

log = logging.getLogger(__name__)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def aggregate_layer(layer_id: int, requested_at: str | None = None, scheduled: bool = False) -> int | None:
    """Aggregate one layer. `scheduled`: the debounced run queued by aggregation_schedule. With
    `requested_at` (ISO time of the triggering commit), a run that started after it already saw
    that work, so a burst of completed HITs costs one run, not many."""
    from datetime import datetime

    from units.dissection.models import Layer
    from units.results.models import AggregationRun
    from units.results.schedule import aggregation_run_scheduled
    from units.results.services import aggregation_run_layer

    if scheduled:
        run = aggregation_run_scheduled(layer_id=layer_id)
        return run.pk if run is not None else None

    layer = Layer.objects.select_related("job__dataset").filter(pk=layer_id).first()
    if layer is None:  # deleted since it was enqueued: nothing to do
        return None
    if requested_at and AggregationRun.objects.filter(
        layer=layer, status=AggregationRun.Status.SUCCEEDED, started_at__gt=datetime.fromisoformat(requested_at)
    ).exists():
        return None
    return aggregation_run_layer(layer=layer).pk


@shared_task(acks_late=True)
def aggregate_stale(starting: bool = False) -> list[int]:
    """Re-aggregate layers with answers newer than their last aggregation run. `starting`: sent by a
    worker as it starts, when runs queued before a crash are taken for lost (schedule.aggregation_marks_drop)."""
    from django.db.models import Max

    from units.crowd.models import Assignment
    from units.results.models import AggregationRun

    latest_work = (
        Assignment.objects.exclude(submitted_at=None).values("hit__unit__layer")
        .annotate(last=Max("submitted_at"))
    )
    done = dict(
        AggregationRun.objects.filter(status="succeeded").exclude(layer=None).values("layer")
        .annotate(last=Max("started_at")).values_list("layer", "last")
    )
    stale = [r["hit__unit__layer"] for r in latest_work
             if r["hit__unit__layer"] not in done or done[r["hit__unit__layer"]] < r["last"]]
    from units.results.schedule import aggregation_marks_drop, aggregation_schedule

    if starting:
        aggregation_marks_drop(stale)
    # Through the debounce marks: a layer whose run is queued or running is left to it; a mark left by
    # a killed worker is stale after a minute and replaced (schedule.SCHEDULE_STALE).
    return [layer_id for layer_id in stale if aggregation_schedule(layer_id=layer_id)]


@shared_task(acks_late=True, autoretry_for=(OSError,), retry_backoff=True, max_retries=3)
def run_export(export_id: int) -> None:
    from units.results.services import export_run

    export_run(export_id=export_id)


@shared_task(acks_late=True, autoretry_for=(Exception,), retry_backoff=True, max_retries=3)
def aggregate_batch(batch_id: int) -> int | None:
    from units.crowd.models import HitBatch
    from units.results.services import aggregation_run_batch

    batch = HitBatch.objects.filter(pk=batch_id).first()
    return aggregation_run_batch(batch=batch).pk if batch else None
