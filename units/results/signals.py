"""Re-aggregate a layer as its HITs complete (and when a rejection removes an answer).

A signal (rather than a call inside the crowd app's services) keeps the crowd code unaware of
aggregation. Saves inside one transaction are collected and scheduled once per layer, after commit,
so the worker reads committed rows and a rolled-back submit schedules nothing. Scheduling is
debounced (schedule.aggregation_schedule): a busy layer is aggregated once every few seconds, on
a worker (or a timer thread without a broker), never inside the submitting request. Approving work
already counted changes no answer, so it triggers nothing; `tasks.results.aggregate_stale` runs
periodically as a safety net, and requesters can aggregate on demand.
"""
import threading

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from annotate_site.plainsql import fetch_one, quote
from units.crowd.models import Assignment

from .schedule import aggregation_schedule

_pending = threading.local()


def _flush() -> None:
    layers = getattr(_pending, "layers", set())
    _pending.layers = set()
    for layer_id in sorted(layers):
        aggregation_schedule(layer_id=layer_id)


def _hit_complete(assignment: Assignment) -> bool:
    hit = assignment.hit
    # Plain SQL (every submit asks): hit.assignments.filter(status__in=(SUBMITTED, APPROVED)).count().
    (counted,) = fetch_one(f"SELECT COUNT(*) FROM {quote(Assignment._meta.db_table)} WHERE hit_id = %s"
                           " AND status IN (%s, %s)",
                           [hit.pk, Assignment.Status.SUBMITTED, Assignment.Status.APPROVED])
    return counted >= hit.max_assignments


@receiver(post_save, sender=Assignment, dispatch_uid="results_assignment_saved")
def assignment_saved(sender, instance: Assignment, created: bool, update_fields=None, **kwargs) -> None:
    if not getattr(settings, "RESULTS_AGGREGATE_ON_SUBMIT", True):
        return
    if update_fields is not None and "status" not in update_fields:
        return  # e.g. feedback edits: the answer set did not change
    if instance.status == Assignment.Status.REJECTED:
        pass  # an answer left the counted set
    elif instance.status != Assignment.Status.SUBMITTED or not _hit_complete(instance):
        return
    layers = getattr(_pending, "layers", None)
    if layers is None:
        layers = _pending.layers = set()
    layers.add(instance.hit.unit.layer_id)
    # One callback per save; the first to run drains the set, so a layer is enqueued once per commit
    # (and ids left behind by a rolled-back transaction go out with the next commit, harmlessly).
    transaction.on_commit(_flush)
