"""A HIT's slots: freeing abandoned or returned assignments, and keeping the HIT's status in step.

Used by the queue (services), by accounts (blocking frees a worker's slots) and by review (a
rejection reopens a slot), so it sits below all three.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from .models import Assignment, Hit

SLOT = Assignment.SLOT_STATUSES


def hit_sync_status(hit: Hit, *, now: datetime) -> None:
    """Keep Mechanical Turk's HIT status readable; the slot count, not the status, decides claims."""
    if hit.status in (Hit.Status.DISPOSED, Hit.Status.REVIEWING):
        return
    counts = hit.assignments.aggregate(
        held=Count("pk", filter=Q(status__in=SLOT)),
        working=Count("pk", filter=Q(status=Assignment.Status.ACCEPTED)),
    )
    if counts["held"] < hit.max_assignments and hit.expires_at > now:
        status = Hit.Status.ASSIGNABLE
    elif counts["working"]:
        status = Hit.Status.UNASSIGNABLE
    else:
        status = Hit.Status.REVIEWABLE
    if status != hit.status:
        hit.status = status
        hit.save(update_fields=["status"])


def assignments_reclaim_expired(*, now: datetime | None = None) -> int:
    """Abandon accepted assignments past their deadline, freeing their slots. Returns how many."""
    now = now or timezone.now()
    expired = Assignment.objects.filter(status=Assignment.Status.ACCEPTED, deadline__lte=now)
    return assignments_free(assignments=expired, status=Assignment.Status.ABANDONED, now=now)


def assignments_free(*, assignments: QuerySet[Assignment], status: str, now: datetime | None = None) -> int:
    """Move accepted assignments to `status` (abandoned/returned) and reopen their HITs."""
    now = now or timezone.now()
    with transaction.atomic():
        # The status condition is re-checked by the UPDATE itself, so an assignment submitted
        # meanwhile (it holds the row lock until commit) is left alone.
        ids = list(assignments.filter(status=Assignment.Status.ACCEPTED).values_list("pk", flat=True))
        if not ids:
            return 0
        freed = Assignment.objects.filter(pk__in=ids, status=Assignment.Status.ACCEPTED).update(status=status)
        hit_ids = set(Assignment.objects.filter(pk__in=ids).values_list("hit_id", flat=True))
        for hit in Hit.objects.filter(pk__in=hit_ids):
            hit_sync_status(hit, now=now)
    return freed
