"""Workers of an outside crowd on this site: who they are here and the assignment they hold.

An MTurk worker has no account and no password: their WorkerId becomes the user `mturk-<WorkerId>` (an
unusable password, so nobody signs in as them) the first time they accept one of the project's HITs. Their
assignment here mirrors MTurk's: made when they accept (MTurk's AssignmentId kept in `external_id`), with
the HIT's duration as deadline. MTurk enforces MaxAssignments itself; the unique (hit, worker) pair keeps a
reload from making a second assignment here.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from annotate_site.celery import enqueue, enqueue_in
from units.projects.access import WORK, scope

from .annotators import profile_get
from .channels import MTURK_CHANNELS
from .errors import Conflict, CrowdError, NotAllowed
from .models import Assignment, BonusPayment, Channel, Hit, LabelSource
from .mturk import account_balance, assignment_confirm_mturk, mturk_client, mturk_username
from .prolific import assignment_confirm_prolific, workspace_balance
from .services import label_answers_by

OUTSIDE_CHANNELS = (*MTURK_CHANNELS, Channel.PROLIFIC)

WORKER_ID_MAX = 64


def outside_worker(worker_id: str, *, crowd: str = "mturk") -> User:
    """The user standing for an MTurk worker (or, crowd="prolific", a Prolific participant), made on first
    sight."""
    username = mturk_username(worker_id) if crowd == "mturk" else f"{crowd}-{worker_id}"
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
    if hit.label_source == LabelSource.CROWD and label_answers_by(worker).filter(
            assignment__hit__unit=hit.unit_id).exists():  # as the site's claim never offers it (crowd.verify)
        raise NotAllowed("You helped make this unit's label, so you cannot verify it: please return this HIT.")
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


def channel_balance(project_id: int, channel: str) -> str:
    """One line for the publish page: what the project's account on `channel` has left to spend, or why it
    could not be read (never an error page); "" for the site, and for Prolific without a workspace set."""
    try:
        if channel in MTURK_CHANNELS:
            balance = account_balance(mturk_client(project_id, channel))
            return f"Balance on {Channel(channel).label}: ${balance} available."
        if channel == Channel.PROLIFIC:
            available = workspace_balance(project_id)
            return f"Prolific workspace balance: {available} available." if available else ""
    except CrowdError as exc:
        return f"The account balance could not be read: {exc}"
    return ""


# --- confirming answers (units/crowd/confirmation.py) ------------------------------------------------

# Seconds before each check of a pending answer: the first leaves the browser time to post to MTurk; the
# last ones cover a marketplace that answers late (the MTurk sync decides what is still pending after that).
CONFIRM_WAITS = (15, 30, 60, 120, 300, 600, 1200)


def outside_answer_confirm_later(assignment_id: int) -> None:
    """Schedule the first check of a pending answer, after this transaction commits."""
    if getattr(settings, "CROWD_CONFIRM_OUTSIDE_ANSWERS", True):
        transaction.on_commit(lambda: enqueue_in(CONFIRM_WAITS[0], "tasks.crowd.outside_confirm", assignment_id, 0))


def outside_answer_check(assignment_id: int) -> str:
    """Ask the marketplace about a pending answer once: "confirmed", "void", "wait" or "done" (not pending)."""
    assignment = Assignment.objects.select_related("hit__batch", "worker").filter(pk=assignment_id).first()
    if assignment is None or assignment.status != Assignment.Status.PENDING:
        return "done"
    try:
        if assignment.hit.batch.channel in MTURK_CHANNELS:
            return assignment_confirm_mturk(assignment)
        return assignment_confirm_prolific(assignment)
    except CrowdError:  # no credentials any more, or the marketplace failed: ask again later
        return "wait"


# --- from the pages: each queues its marketplace call after commit (tasks.crowd), never calls it in a request

def _outside_work_of(user, by, channels=OUTSIDE_CHANNELS) -> list[Assignment]:
    """The outside-crowd assignments of `user` in projects where `by` may work (register, publish, pay)."""
    rows = Assignment.objects.filter(worker=user, hit__batch__channel__in=channels).exclude(external_id="")
    return list(scope(rows, by, WORK, path="hit__batch__project").select_related("hit__batch").order_by("-pk"))


def outside_worker_block(*, user, reason: str, by) -> int:
    """Block an MTurk worker on MTurk too, once per project and channel they worked in (and `by` may act for):
    MTurk then stops offering them the requester's HITs. Returns how many blocks were queued."""
    if not user.username.startswith("mturk-"):
        return 0
    if not reason.strip():
        raise CrowdError("Blocking a worker on MTurk needs a reason (MTurk shows it to them).")
    targets = {(a.hit.batch.project_id, a.hit.batch.channel) for a in _outside_work_of(user, by, MTURK_CHANNELS)}
    worker_id = user.username.removeprefix("mturk-")
    for project_id, channel in sorted(targets):
        transaction.on_commit(lambda p=project_id, c=channel: enqueue(
            "tasks.crowd.mturk_block", p, c, worker_id, reason.strip()))
    return len(targets)


def outside_worker_bonus(*, user, amount: Decimal, reason: str, by) -> Assignment:
    """Queue a bonus on the worker's latest approved MTurk or Prolific assignment (in a project `by` may pay
    from); one bonus per assignment."""
    amount = Decimal(amount).quantize(Decimal("0.01"))
    if amount <= 0 or not reason.strip():
        raise CrowdError("A bonus needs a positive amount and a reason the worker will read.")
    approved = [a for a in _outside_work_of(user, by) if a.status == Assignment.Status.APPROVED]
    if not approved:
        raise CrowdError(f"{user.username} has no approved outside-crowd assignment in your projects to pay a "
                         f"bonus on.")
    assignment = approved[0]
    bonus = bonus_record(assignment=assignment, amount=amount, reason=reason, by=by)
    if assignment.hit.batch.channel == Channel.PROLIFIC:
        transaction.on_commit(lambda: enqueue("tasks.crowd.prolific_bonus", bonus.pk))
    else:
        transaction.on_commit(lambda: enqueue("tasks.crowd.mturk_bonus", assignment.pk, str(amount),
                                              reason.strip()))
    return assignment


def bonus_record(*, assignment: Assignment, amount: Decimal, reason: str, by) -> BonusPayment:
    """The one bonus an assignment may get; a second is refused (the marketplace would pay it again)."""
    from django.db import IntegrityError

    try:
        with transaction.atomic():
            return BonusPayment.objects.create(assignment=assignment, amount=amount, reason=reason.strip()[:500],
                                               created_by=by if getattr(by, "is_authenticated", False) else None)
    except IntegrityError:
        raise CrowdError(f"Assignment {assignment.pk} already has a bonus; one bonus per assignment.") from None
