"""Re-aggregate a layer when work on one of its HITs is submitted, approved or rejected.

A signal (rather than a call inside the crowd app's services) keeps the crowd code unaware of
aggregation. Saves inside one transaction are collected and enqueued once, after commit, so the
worker reads committed rows and a rolled-back submit enqueues nothing.
"""
import threading

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from units.crowd.models import Assignment

_pending = threading.local()
_TRIGGERS = {Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REJECTED}


def _flush() -> None:
    from tasks.results import aggregate_layer

    layers = getattr(_pending, "layers", set())
    _pending.layers = set()
    for layer_id in sorted(layers):
        aggregate_layer.delay(layer_id)


@receiver(post_save, sender=Assignment, dispatch_uid="results_assignment_saved")
def assignment_saved(sender, instance: Assignment, created: bool, update_fields=None, **kwargs) -> None:
    if not getattr(settings, "RESULTS_AGGREGATE_ON_SUBMIT", True) or instance.status not in _TRIGGERS:
        return
    if update_fields is not None and "status" not in update_fields:
        return  # e.g. feedback edits: the answer set did not change
    layers = getattr(_pending, "layers", None)
    if layers is None:
        layers = _pending.layers = set()
    layers.add(Assignment.objects.filter(pk=instance.pk).values_list("hit__unit__layer_id", flat=True).first())
    layers.discard(None)
    # One callback per save; the first to run drains the set, so a layer is enqueued once per commit
    # (and ids left behind by a rolled-back transaction go out with the next commit, harmlessly).
    transaction.on_commit(_flush)
