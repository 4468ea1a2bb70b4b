"""The debounce of a layer's aggregation: at most one run queued and one running per layer.

Every submit that completes a HIT asks for a run (results.signals); a conditional UPDATE of the layer's
AggregationSchedule row lets exactly one of many concurrent askers queue it, and the run unmarks the row
before it reads the answers, so an answer committed after that point queues the next run and none is lost.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from annotate_site.celery import enqueue_in
from annotate_site.plainsql import fetch_one, quote
from units.dissection.models import Layer

from .models import AggregationRun, AggregationSchedule
from .services import aggregation_run_layer

# A queued mark whose due time passed this long ago, or a running mark older than SCHEDULE_STALE_RUNS
# times the layer's last run (at least SCHEDULE_STALE), is taken for lost (a worker killed with the
# message or in the run) and may be replaced: aggregation catches up within about a minute of a
# worker's death instead of waiting for the periodic sweep.
SCHEDULE_STALE = timedelta(minutes=1)
SCHEDULE_STALE_RUNS = 5


def aggregation_debounce_seconds() -> float:
    return float(getattr(settings, "RESULTS_AGGREGATE_DEBOUNCE", 5.0))


# A layer's next run waits at least this many times as long as its last run took, so aggregation of
# a big, busy layer takes at most about 1/(1+AGGREGATE_LOAD_FACTOR) of a worker's time, whatever the
# debounce setting (a 512-unit layer took 1.1 s of CPU per run; at a 5 s delay that was 20% of a core
# that the web processes on the same 2 cores needed). Its answers are counted all the same, later.
AGGREGATE_LOAD_FACTOR = 10.0


def _last_run_duration(layer_id: int) -> timedelta:
    last = (AggregationRun.objects.filter(layer_id=layer_id, status=AggregationRun.Status.SUCCEEDED)
            .exclude(finished_at=None).order_by("-started_at").values_list("started_at", "finished_at").first())
    return last[1] - last[0] if last is not None else timedelta(0)


def aggregation_delay(layer_id: int) -> float:
    """The debounce delay, stretched to AGGREGATE_LOAD_FACTOR x the layer's last run when that is longer."""
    delay = aggregation_debounce_seconds()
    if delay > 0:
        delay = max(delay, AGGREGATE_LOAD_FACTOR * _last_run_duration(layer_id).total_seconds())
    return delay


def aggregation_marks_drop(layer_ids) -> int:
    """Take the queued (not running) marks of these layers for lost, so the next aggregation_schedule queues
    a run at once. For a worker that starts after a crash: the delayed messages its predecessor had
    reserved died with it (`kill -9`), and their marks would hold new runs back until they went stale
    (SCHEDULE_STALE) and the periodic sweep came by. A message that a
    live worker still holds makes one extra run, no more."""
    return (AggregationSchedule.objects.filter(layer_id__in=list(layer_ids), running_since=None)
            .exclude(due_at=None).update(due_at=None))


def aggregation_schedule(*, layer_id: int, now=None) -> bool:
    """Ask for an aggregation of the layer within the debounce delay (RESULTS_AGGREGATE_DEBOUNCE).

    Returns True when this call queued the run, False when one was already queued: that run reads
    the answers only when it starts, so it will count this one too. The conditional UPDATE is the
    mutex: of many submits finishing HITs of the same layer at once, exactly one queues a run.
    Call it after commit, so the run can see the answer that asked for it.
    """
    now = now or timezone.now()
    delay = aggregation_debounce_seconds()

    table = quote(AggregationSchedule._meta.db_table)
    # One plain statement (every submit that completes a HIT runs this): mark the layer's row as queued
    # unless a run is queued already (`due_at` set and not stale), creating the row on the layer's first use.
    # ON CONFLICT makes the first use safe under concurrent submits; the layer's existence is checked in
    # the same statement, so a deleted layer queues nothing. A row comes back only when this call queued.
    queued = fetch_one(
        f"INSERT INTO {table} (layer_id, due_at, running_since)"
        f" SELECT %s, %s, NULL WHERE EXISTS (SELECT 1 FROM {quote(Layer._meta.db_table)} WHERE id = %s)"
        f" ON CONFLICT (layer_id) DO UPDATE SET due_at = excluded.due_at"
        f" WHERE {table}.due_at IS NULL OR {table}.due_at < %s RETURNING 1",
        [layer_id, now + timedelta(seconds=delay), layer_id, now - SCHEDULE_STALE]) is not None
    if queued:
        # Only the call that queued asks how long the last run took (once per delay, not per submit).
        stretched = aggregation_delay(layer_id)
        if stretched > delay:
            delay = stretched
            AggregationSchedule.objects.filter(layer_id=layer_id).update(due_at=now + timedelta(seconds=delay))
        enqueue_in(delay, "tasks.results.aggregate_layer", layer_id, None, True)
    return bool(queued)


def aggregation_run_scheduled(*, layer_id: int) -> AggregationRun | None:
    """The queued run of a layer: unmark it, run it unless another run of the layer is in progress
    (then queue it again, so answers that came during that run are counted after it)."""
    now = timezone.now()
    stale = max(SCHEDULE_STALE, SCHEDULE_STALE_RUNS * _last_run_duration(layer_id))
    mine = (AggregationSchedule.objects.filter(layer_id=layer_id)
            .filter(Q(running_since=None) | Q(running_since__lt=now - stale))
            # Unmark "queued" before reading the answers: an answer committed after this point
            # queues a new run, one committed before it is read by this run. None is lost.
            .update(due_at=None, running_since=now))
    if not mine:
        AggregationSchedule.objects.filter(layer_id=layer_id).update(due_at=None)
        aggregation_schedule(layer_id=layer_id)
        return None
    try:
        layer = Layer.objects.select_related("job__dataset").filter(pk=layer_id).first()
        return aggregation_run_layer(layer=layer) if layer is not None else None
    finally:
        AggregationSchedule.objects.filter(layer_id=layer_id, running_since=now).update(running_since=None)
