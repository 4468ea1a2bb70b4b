"""Prolific: participants come from a study whose URL is this site's study page, and leave with its code.

The study URL (shown on the project's crowd-channel page) is `<SITE_URL>/crowd/prolific/<batch id>/` with
`?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}`, Prolific's placeholders.
The participant becomes the user `prolific-<PID>` (no password), works up to the project's number of HITs
per participant, and is sent to `https://app.prolific.com/submissions/complete?cc=<code>`. All their
assignments carry the submission (SESSION_ID) as `external_id`.

A submission is reviewed once all its assignments are decided here: rejected if any was rejected, with the
rejection category FAILED_CHECK when a rejected answer missed sentinels (Prolific's name for failed
attention checks) and LOW_EFFORT otherwise; approved if none was. Before acting, the submission's status
is read again: only AWAITING REVIEW is changed; a submission Prolific already shows as decided the same way
is left alone, so a retry or a second click does nothing twice.

Bonuses: Prolific's pay call is not idempotent, so the bonus row is marked paid before the call (see
`BonusPayment`); a failed call leaves an error on it for the requester, never a second payment.
"""
from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from .channels import channel_credentials, channel_settings_of
from .confirmation import VOID, outside_answer_confirm, outside_answer_void
from .errors import Conflict, CrowdError, NotAllowed
from .models import Assignment, BonusPayment, Channel, Hit, HitBatch, LabelSource
from .services import label_answers_by

COMPLETION_URL = "https://app.prolific.com/submissions/complete?cc="
PROLIFIC_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
AWAITING_REVIEW, APPROVED, REJECTED = "AWAITING REVIEW", "APPROVED", "REJECTED"
# Every status Prolific documents for a submission; the ones not listed in `review_action` are not reviewable.
STATUSES = ("ACTIVE", AWAITING_REVIEW, APPROVED, REJECTED, "RETURNED", "TIMED-OUT")
FAILED_CHECK, LOW_EFFORT = "FAILED_CHECK", "LOW_EFFORT"
TIMEOUT_SECONDS = 20


class ProlificError(CrowdError):
    """Prolific refused a call or could not be reached; the message says which and why (no token in it).
    `http_status` is Prolific's answer (None: not reached)."""

    status_code = 502

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


def prolific_call(token: str, method: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(settings.PROLIFIC_API_URL.rstrip("/") + "/" + path.lstrip("/"), method=method,
                                     data=json.dumps(body).encode() if body is not None else None,
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:300].decode("utf-8", "replace")
        raise ProlificError(f"Prolific refused {method} {path} ({exc.code}): {detail}", exc.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise ProlificError(f"Prolific could not be reached for {method} {path}: {type(exc).__name__}.") from None
    try:
        return json.loads(raw) if raw else {}
    except ValueError:
        raise ProlificError(f"Prolific answered {method} {path} with something that is not JSON.") from None


def _token(project_id: int) -> str:
    token = channel_credentials(project_id).prolific_token
    if not token:
        raise CrowdError("No Prolific API token for this project.")
    return token


def workspace_balance(project_id: int) -> str | None:
    """What the project's Prolific workspace has left to spend ("123.45 GBP"), or None when no workspace is
    set. Prolific gives amounts in the currency's hundredths (pence, cents)."""
    stored = channel_settings_of(project_id)
    if stored is None or not stored.prolific_workspace_id:
        return None
    body = prolific_call(_token(project_id), "GET", f"workspaces/{stored.prolific_workspace_id}/balance/")
    try:
        available = Decimal(int(body["available_balance"])) / 100
    except (KeyError, TypeError, ValueError):
        raise ProlificError("Prolific answered the workspace balance without an available balance.") from None
    return f"{available:.2f} {body.get('currency_code') or ''}".strip()


def study_url(batch: HitBatch) -> str:
    from django.urls import reverse

    return (settings.SITE_URL + reverse("crowd:prolific_study", args=[batch.pk])
            + "?PROLIFIC_PID={{%PROLIFIC_PID%}}&STUDY_ID={{%STUDY_ID%}}&SESSION_ID={{%SESSION_ID%}}")


# --- participants -----------------------------------------------------------------------------------

@transaction.atomic
def participant_next_assignment(*, batch: HitBatch, worker, session_id: str, now=None) -> Assignment | None:
    """The participant's current assignment in the batch, or a new one on a HIT with a free slot; None once
    they did the project's number of HITs (or none is left for them). The HITs are locked while a slot is
    taken, so two participants never fill one slot twice."""
    from .annotators import profile_get

    now = now or timezone.now()
    if profile_get(worker).is_blocked:
        raise NotAllowed("You can no longer work on this study.")
    mine = Assignment.objects.filter(worker=worker, hit__batch=batch)
    current = mine.filter(status=Assignment.Status.ACCEPTED, deadline__gt=now).first()
    if current is not None:
        return current
    stored = channel_settings_of(batch.project_id)
    wanted = stored.prolific_hits_per_participant if stored else 10
    if mine.filter(status__in=Assignment.SLOT_STATUSES).exclude(status=Assignment.Status.ACCEPTED).count() >= wanted:
        return None
    held = Count("assignments", filter=Q(assignments__status__in=[Assignment.Status.PENDING,
                                                                  Assignment.Status.SUBMITTED,
                                                                  Assignment.Status.APPROVED])
                 | Q(assignments__status=Assignment.Status.ACCEPTED, assignments__deadline__gt=now))
    # A verify HIT of a crowd label is never given to someone who helped make that label (crowd.verify).
    labelled = label_answers_by(worker).values("assignment__hit__unit_id")
    open_hits = (Hit.objects.filter(batch=batch, expires_at__gt=now).exclude(status=Hit.Status.DISPOSED)
                 .exclude(assignments__worker=worker).exclude(label_source=LabelSource.CROWD, unit_id__in=labelled)
                 .annotate(held=held).order_by("pk"))
    for hit in open_hits:
        if hit.held >= hit.max_assignments:
            continue
        # Lock the HIT, then count again: another participant may have taken the last slot meanwhile.
        Hit.objects.select_for_update().filter(pk=hit.pk).exists()
        taken = hit.assignments.filter(Q(status__in=[Assignment.Status.PENDING, Assignment.Status.SUBMITTED,
                                                     Assignment.Status.APPROVED])
                                       | Q(status=Assignment.Status.ACCEPTED, deadline__gt=now)).count()
        if taken < hit.max_assignments:
            return Assignment.objects.create(hit=hit, worker=worker, external_id=session_id, accepted_at=now,
                                             deadline=now + timedelta(seconds=hit.assignment_duration_seconds))
    return None


def assignment_confirm_prolific(assignment: Assignment) -> str:
    """Ask Prolific about a pending answer (units/crowd/confirmation.py): "confirmed" when its submission
    (SESSION_ID) is of this study and this participant and not returned, "void" when Prolific does not know
    the submission, or knows it under another study or participant, or the participant returned it; "wait"
    when Prolific could not be asked."""
    if assignment.status != Assignment.Status.PENDING:
        return "done"
    batch = assignment.hit.batch
    try:
        submission = prolific_call(_token(batch.project_id), "GET", f"submissions/{assignment.external_id}/")
    except ProlificError as exc:
        if exc.http_status != 404:
            return "wait"
        outside_answer_void(assignment.pk, reason="Prolific has no such submission.")
        return "void"
    participant = submission.get("participant") or submission.get("participant_id")
    status = submission.get("status", "")
    if (submission.get("study_id") != batch.external_id
            or f"prolific-{participant}" != assignment.worker.username):
        outside_answer_void(assignment.pk, reason="Prolific knows this submission under another study or "
                                                  "participant.")
        return "void"
    if status in ("RETURNED", "TIMED-OUT"):
        outside_answer_void(assignment.pk, reason=f"The submission was {status.lower()} on Prolific.")
        return "void"
    outside_answer_confirm(assignment.pk, external_status=status)
    return "confirmed"


def completion_redirect(batch: HitBatch) -> str:
    stored = channel_settings_of(batch.project_id)
    if stored is None or not stored.prolific_completion_code:
        raise CrowdError("This study has no completion code yet; the requester must set it.")
    return COMPLETION_URL + stored.prolific_completion_code


# --- reviews and bonuses --------------------------------------------------------------------------------

def submission_decision(session_id: str) -> tuple[str, str, str] | None:
    """(action, rejection category, message) once every assignment of the submission is decided, else None."""
    # A void answer (units/crowd/confirmation.py) is not the participant's work: it decides nothing.
    rows = list(Assignment.objects.filter(external_id=session_id, hit__batch__channel=Channel.PROLIFIC)
                .select_related("annotation").exclude(status__in=[Assignment.Status.RETURNED,
                                                                  Assignment.Status.ABANDONED])
                .exclude(external_status=VOID))
    if not rows or any(a.status in (Assignment.Status.ACCEPTED, Assignment.Status.PENDING,
                                    Assignment.Status.SUBMITTED) for a in rows):
        return None
    rejected = [a for a in rows if a.status == Assignment.Status.REJECTED]
    if not rejected:
        return "APPROVE", "", ""
    missed = any(getattr(a, "annotation", None) is not None and a.annotation.sentinels_missed for a in rejected)
    message = " ".join(sorted({a.feedback for a in rejected if a.feedback})) or "Your answers were rejected."
    return "REJECT", FAILED_CHECK if missed else LOW_EFFORT, message


def review_action(status: str, action: str) -> str:
    """"send", "none" (Prolific already agrees), "refuse" (decided the other way) or "wait" (not reviewable)."""
    if status not in STATUSES:
        raise ProlificError(f"Prolific answered an unknown submission status {status!r}.")
    if status == AWAITING_REVIEW:
        return "send"
    if status in (APPROVED, REJECTED):
        return "none" if (status == APPROVED) == (action == "APPROVE") else "refuse"
    return "wait"


def submission_push_review(*, project_id: int, session_id: str) -> str:
    """Send the submission's decision to Prolific (status-checked); returns what happened."""
    decision = submission_decision(session_id)
    if decision is None:
        return "undecided"
    action, category, message = decision
    token = _token(project_id)
    status = prolific_call(token, "GET", f"submissions/{session_id}/").get("status", "")
    what = review_action(status, action)
    if what == "refuse":
        raise Conflict(f"Prolific already shows submission {session_id} as {status.lower()}.")
    if what == "send":
        body = {"action": action}
        if action == "REJECT":
            body.update({"rejection_category": category, "message": message})
        prolific_call(token, "POST", f"submissions/{session_id}/transition/", body)
    Assignment.objects.filter(external_id=session_id).exclude(external_status=VOID).update(
        external_status=APPROVED if action == "APPROVE" else REJECTED)
    return what


def bonus_pay(bonus: BonusPayment) -> None:
    """Set up and pay a bonus on the assignment's submission, at most once."""
    assignment = bonus.assignment
    batch = assignment.hit.batch
    token = _token(batch.project_id)
    if not bonus.external_id:
        setup = prolific_call(token, "POST", "submissions/bonus-payments/", {
            "study_id": batch.external_id, "csv_bonuses": f"{assignment.external_id},{bonus.amount}\n"})
        BonusPayment.objects.filter(pk=bonus.pk).update(external_id=str(setup["id"]))
        bonus.external_id = str(setup["id"])
    # Claimed before the call: Prolific would pay a repeated call again.
    if not BonusPayment.objects.filter(pk=bonus.pk, paid_at__isnull=True).update(paid_at=timezone.now()):
        return
    try:
        prolific_call(token, "POST", f"bulk-bonus-payments/{bonus.external_id}/pay/")
    except ProlificError as exc:
        BonusPayment.objects.filter(pk=bonus.pk).update(error=str(exc)[:500])
        raise
