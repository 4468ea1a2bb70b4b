"""Re-aggregate a layer as answers arrive (and when a rejection removes an answer).

Every counted answer asks, not only the one that completes its HIT: with fewer annotators than
assignments per HIT no HIT might ever complete, and requesters would see nothing. Pages flag what
rests on a single answer (UnitAggregate.agreement_known).

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

from units.crowd.models import Assignment

from .schedule import aggregation_schedule

_pending = threading.local()


def _flush() -> None:
    layers = getattr(_pending, "layers", set())
    _pending.layers = set()
    for layer_id in sorted(layers):
        aggregation_schedule(layer_id=layer_id)


@receiver(post_save, sender=Assignment, dispatch_uid="results_assignment_saved")
def assignment_saved(sender, instance: Assignment, created: bool, update_fields=None, **kwargs) -> None:
    if not getattr(settings, "RESULTS_AGGREGATE_ON_SUBMIT", True):
        return
    if update_fields is not None and "status" not in update_fields:
        return  # e.g. feedback edits: the answer set did not change
    if instance.status not in (Assignment.Status.REJECTED, Assignment.Status.SUBMITTED):
        return  # only a new answer or one leaving the counted set (a rejection) changes the results
    layers = getattr(_pending, "layers", None)
    if layers is None:
        layers = _pending.layers = set()
    layers.add(instance.hit.unit.layer_id)
    # One callback per save; the first to run drains the set, so a layer is enqueued once per commit
    # (and ids left behind by a rolled-back transaction go out with the next commit, harmlessly).
    transaction.on_commit(_flush)
