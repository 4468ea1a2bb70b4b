"""Workers of an outside crowd on this site: who they are here and the assignment they hold.

An MTurk worker has no account and no password: their WorkerId becomes the user `mturk-<WorkerId>` (an
unusable password, so nobody signs in as them) the first time they accept one of the project's HITs. Their
assignment here mirrors MTurk's: made when they accept (MTurk's AssignmentId kept in `external_id`), with
the HIT's duration as deadline. MTurk enforces MaxAssignments itself; the unique (hit, worker) pair keeps a
reload from making a second assignment here.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from .annotators import profile_get
from .errors import Conflict, NotAllowed
from .models import Assignment, Hit
from .mturk import mturk_username

WORKER_ID_MAX = 64


def outside_worker(worker_id: str) -> User:
    """The user standing for an MTurk worker, made on first sight."""
    username = mturk_username(worker_id)
    users = get_user_model().objects
    try:
        with transaction.atomic():
            user, created = users.get_or_create(username=username)
            if created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
    except IntegrityError:  # two first requests of the same worker raced; the other one made the user
        user = users.get(username=username)
    return user


@transaction.atomic
def outside_assignment_accept(*, hit: Hit, worker: User, external_id: str, now: datetime | None = None) -> Assignment:
    """The worker's assignment of `hit`, made when MTurk says they accepted it (a reload returns the same one)."""
    now = now or timezone.now()
    if profile_get(worker).is_blocked:
        raise NotAllowed("You can no longer work on this requester's HITs.")
    existing = Assignment.objects.select_for_update().filter(hit=hit, worker=worker).first()
    if existing is not None:
        if existing.external_id != external_id and existing.status == Assignment.Status.ACCEPTED:
            # They returned the HIT on MTurk and accepted it again: MTurk made a new assignment.
            existing.external_id, existing.deadline = external_id, now + hit.assignment_duration
            existing.save(update_fields=["external_id", "deadline"])
        elif existing.external_id != external_id:
            raise Conflict("You already did this HIT.")
        return existing
    return Assignment.objects.create(hit=hit, worker=worker, external_id=external_id, accepted_at=now,
                                     deadline=now + timedelta(seconds=hit.assignment_duration_seconds))
