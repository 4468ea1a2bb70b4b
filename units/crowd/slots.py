"""A HIT's slots: freeing abandoned or returned assignments, and keeping the HIT's status in step.

Used by the queue (services), by annotators (blocking frees a worker's slots) and by review (a
rejection reopens a slot), so it sits below all three.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from annotate_site.plainsql import count_where, execute, fetch_one, placeholders, quote

from .models import Assignment, Hit

SLOT = Assignment.SLOT_STATUSES


def hit_sync_status(hit: Hit, *, now: datetime) -> None:
    """Keep Mechanical Turk's HIT status readable; the slot count, not the status, decides claims."""
    if hit.status in (Hit.Status.DISPOSED, Hit.Status.REVIEWING):
        return
    # One plain statement (claim and submit run this): the HIT's slots counted as `hit.assignments.aggregate(
    # held=Count(filter=status in SLOT), working=Count(filter=status accepted))`, the status they give, and
    # the UPDATE when it differs from the one we hold; a row comes back only when it changed. The deadline
    # and the slot count are read from `hit` (the caller's copy decides, as when this was a count and a save).
    new = ("CASE WHEN c.held < %s AND %s THEN %s WHEN c.working > 0 THEN %s ELSE %s END")
    statuses = [hit.max_assignments, hit.expires_at > now, Hit.Status.ASSIGNABLE, Hit.Status.UNASSIGNABLE,
                Hit.Status.REVIEWABLE]
    table = quote(Hit._meta.db_table)
    changed = fetch_one(
        f"UPDATE {table} SET status = {new} FROM (SELECT {count_where(f'status IN ({placeholders(SLOT)})')} AS held,"
        f" {count_where('status = %s')} AS working FROM {quote(Assignment._meta.db_table)} WHERE hit_id = %s) c"
        f" WHERE {table}.id = %s AND {new} <> %s RETURNING {table}.status",
        [*statuses, *SLOT, Assignment.Status.ACCEPTED, hit.pk, hit.pk, *statuses, hit.status])
    if changed is not None:
        hit.status = changed[0]


def hit_set_status(hit: Hit, status: str) -> None:
    """`hit.save(update_fields=["status"])` as one plain UPDATE (the claim's and submit's hot path).
    Hit has no save signals; one added later must be sent from here and from `hit_sync_status` too."""
    execute(f"UPDATE {quote(Hit._meta.db_table)} SET status = %s WHERE id = %s", [status, hit.pk])
    hit.status = status


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
