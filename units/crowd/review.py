"""Requesters' decisions on submitted work, automatic approval, and marking gold units."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from units.dissection.models import Unit
from units.projects.models import Activity
from units.projects.services import activity_record

from annotate_site.celery import enqueue

from .channels import MTURK_CHANNELS
from .errors import Conflict, CrowdError, InvalidAnswer
from .models import Assignment, Channel, Hit
from .slots import hit_sync_status
from .validation import CATEGORIES, NO_CONCEPT, WORD_MAX, clean_word

FEEDBACK_MAX = 1000


@transaction.atomic
def assignments_review(*, assignment_ids: Iterable[int], approve: bool, feedback: str = "",
                       now: datetime | None = None, reviewer=None) -> int:
    """Approve or reject submitted assignments (one or many). A rejection frees the HIT's slot.

    Each project whose work was decided gets a line in its activity log (by `reviewer`).

    All or nothing: if any id is not a submitted assignment, nothing changes.
    """
    now = now or timezone.now()
    ids = sorted({int(pk) for pk in assignment_ids})
    if not ids:
        raise CrowdError("Select at least one assignment.")
    feedback = (feedback or "").strip()
    if len(feedback) > FEEDBACK_MAX:
        raise InvalidAnswer({"feedback": [f"Keep feedback under {FEEDBACK_MAX} characters."]})
    if not approve and not feedback:
        raise InvalidAnswer({"feedback": ["Tell the annotator why the work is rejected."]})
    rows = list(Assignment.objects.select_for_update().filter(pk__in=ids).select_related("hit__batch"))
    found = {a.pk for a in rows}
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise CrowdError(f"No assignment with id {', '.join(map(str, missing))}.")
    not_submitted = [a.pk for a in rows if a.status != Assignment.Status.SUBMITTED]
    if not_submitted:
        raise Conflict(f"Only submitted work can be reviewed; assignment(s) {', '.join(map(str, not_submitted))} "
                       "are not waiting for review.")
    for assignment in rows:
        if approve:
            assignment.status, assignment.approved_at = Assignment.Status.APPROVED, now
            fields = ["status", "approved_at", "feedback"]
        else:
            assignment.status, assignment.rejected_at = Assignment.Status.REJECTED, now
            fields = ["status", "rejected_at", "feedback"]
        assignment.feedback = feedback
        assignment.save(update_fields=fields)
    for hit in Hit.objects.filter(pk__in={a.hit_id for a in rows}):
        hit_sync_status(hit, now=now)
    on_mturk = [a.pk for a in rows if a.external_id and a.hit.batch.channel in MTURK_CHANNELS]
    if on_mturk:  # MTurk hears of the decision after it is ours for good
        transaction.on_commit(lambda: enqueue("tasks.crowd.mturk_push_reviews", on_mturk))
    sessions = sorted({(a.hit.batch.project_id, a.external_id) for a in rows
                       if a.external_id and a.hit.batch.channel == Channel.PROLIFIC})
    for project_id, session_id in sessions:  # a submission is sent once all its answers are decided
        transaction.on_commit(lambda p=project_id, s=session_id: enqueue("tasks.crowd.prolific_push_review", p, s))
    per_project = Counter(a.hit.batch.project_id for a in rows)
    for project_id, n in per_project.items():
        activity_record(project=project_id, actor=reviewer,
                        verb=Activity.Verb.APPROVED if approve else Activity.Verb.REJECTED,
                        summary=f"{n} assignment(s)" + (f": {feedback}" if feedback else ""))
    return len(rows)


def assignments_auto_approve(*, now: datetime | None = None) -> int:
    """Approve submitted work whose auto-approval time has come (Mechanical Turk's AutoApprovalDelay)."""
    now = now or timezone.now()
    with transaction.atomic():
        due = Assignment.objects.filter(status=Assignment.Status.SUBMITTED, auto_approve_at__lte=now)
        # The status condition in the UPDATE keeps a requester's concurrent rejection intact.
        return due.update(status=Assignment.Status.APPROVED, approved_at=now)


@transaction.atomic
def unit_mark_gold(*, unit_id: int, word: str, category: str) -> Unit:
    """Record a unit's known concept so it can serve in the qualification test and as a gold HIT."""
    word = clean_word(word)
    errors: dict[str, list[str]] = {}
    if category not in CATEGORIES:
        errors["gold_category"] = [f"Choose a category: one of {', '.join(CATEGORIES)}."]
    if not word and category != NO_CONCEPT:
        errors["gold_word"] = ["Give the concept's word (alternatives separated by |)."]
    if len(word) > WORD_MAX * 2:
        errors["gold_word"] = [f"Keep gold words under {WORD_MAX * 2} characters."]
    if errors:
        raise InvalidAnswer(errors)
    unit = Unit.objects.select_for_update().filter(pk=unit_id).first()
    if unit is None:
        raise CrowdError(f"There is no unit with id {unit_id}.")
    unit.is_gold, unit.gold_word, unit.gold_category = True, word, category
    unit.save(update_fields=["is_gold", "gold_word", "gold_category"])
    Hit.objects.filter(unit=unit).update(is_gold=True)
    return unit


@transaction.atomic
def unit_unmark_gold(*, unit_id: int) -> None:
    updated = Unit.objects.filter(pk=unit_id).update(is_gold=False)
    if not updated:
        raise CrowdError(f"There is no unit with id {unit_id}.")
    Hit.objects.filter(unit_id=unit_id).update(is_gold=False)
