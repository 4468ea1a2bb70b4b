"""The HIT pages of outside crowds: the one Mechanical Turk frames (ExternalQuestion; the rules are in
units/crowd/mturk.py) and a Prolific study's (units/crowd/prolific.py, at the end of this module).

MTurk opens `/crowd/mturk/hits/<id>/?hitId=..&assignmentId=..&workerId=..&turkSubmitTo=..` in an iframe on
its worker site. In preview (`assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`) the page shows the instructions and
the pictures with the inputs disabled; once accepted, the worker becomes a user of this site (no password),
answers here (stored first, with gold and sentinels checked as for every annotator; a verify HIT asks yes,
no or unsure about its proposed label), and the page then posts `assignmentId` and the answer to
`<turkSubmitTo>/mturk/externalSubmit`. The stored answer counts once MTurk confirms it
(units/crowd/confirmation.py).

A worker not yet qualified for the project takes its qualification test here first (the same test, grading
and retake waits as a site annotator's, units/crowd/qualification.py), before any assignment is made here:
passing records the qualification and opens the HIT (on MTurk the project's qualification type is granted
too); failing shows a page that tells them so and asks them to return the HIT (or the Prolific study):
nothing is posted to MTurk's externalSubmit and no completion code is shown, so nobody is paid for the test
alone. Until the retake wait is over, every HIT of the project shows them that page again, not the test.

Only this page may be framed, and only by the batch's MTurk worker site (CSP frame-ancestors); it posts
only to itself and that site (form-action). It needs no CSRF token: it acts on no session (MTurk's
frame would not send this site's cookies anyway), and who the worker is comes from MTurk's parameters,
which MTurk confirms before the answer counts or anything is paid (units/crowd/confirmation.py).
"""
from __future__ import annotations

import contextlib
import re
from datetime import timedelta

from csp.constants import SELF
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from annotate_site.celery import enqueue
from units.projects.models import Project

from .. import qualification as qual
from ..annotators import profile_get
from ..channels import MTURK_CHANNELS, channel_settings_of
from ..errors import CrowdError, InvalidAnswer
from ..external_work import outside_answer_confirm_later, outside_assignment_accept, outside_worker
from ..forms import AnswerForm
from ..verify import verdict_submit
from .verify import VERDICTS_SHOWN, VerdictForm
from ..models import CATEGORY_CHOICES, Assignment, Channel, Hit, HitBatch, HitKind, QualificationAttempt
from ..mturk import WORKER_SITES
from ..picture_links import signed_attempt_pictures, signed_hit_pictures
from ..prolific import PROLIFIC_ID, completion_redirect, participant_next_assignment
from ..services import annotation_submit
from ..validation import WORD_MAX

PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
MTURK_ID = re.compile(r"^[A-Z0-9]{1,64}$")  # MTurk's HIT, assignment and worker ids
PREVIEW_LINKS_SECONDS = 3600


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def mturk_hit(request: HttpRequest, pk: int) -> HttpResponse:
    hit = Hit.objects.select_related("batch__project", "unit").filter(pk=pk, batch__channel__in=MTURK_CHANNELS).first()
    params = request.GET
    if hit is None or not hit.external_id or params.get("hitId") != hit.external_id:
        raise Http404("No such HIT.")
    site = WORKER_SITES[hit.batch.channel]
    assignment_id = params.get("assignmentId", "")
    now = timezone.now()
    if assignment_id in ("", PREVIEW):
        links_until = min(hit.expires_at, now + timedelta(seconds=PREVIEW_LINKS_SECONDS))
        pictures = signed_hit_pictures(hit, expires_at=links_until)
        response = render(request, "crowd/external_hit.html", {
            "preview": True, "pictures": pictures, **_form_context(hit, _hit_form(hit, None, pictures))})
        return _framed_by(response, site)
    worker_id, submit_to = params.get("workerId", ""), params.get("turkSubmitTo", "").rstrip("/")
    if not (MTURK_ID.match(assignment_id) and MTURK_ID.match(worker_id)) or submit_to != site:
        return _framed_by(render(request, "crowd/external_hit.html", {
            "refused": "Open this HIT from Mechanical Turk."}, status=400), site)
    worker = outside_worker(worker_id)
    gate = _qualification_gate(request, worker=worker, project=hit.batch.project, channel=hit.batch.channel,
                               links_until=min(hit.expires_at, now + hit.assignment_duration))
    if gate is not None:
        return _framed_by(gate, site)
    try:
        assignment = outside_assignment_accept(hit=hit, worker=worker, external_id=assignment_id)
    except CrowdError as exc:
        return _framed_by(render(request, "crowd/external_hit.html", {"refused": str(exc)},
                                 status=exc.status_code), site)
    pictures = signed_hit_pictures(hit, expires_at=assignment.deadline)
    exemplar_ids = {p.pk: p.exemplar_id for p in pictures}
    form = _hit_form(hit, request.POST if request.method == "POST" else None, pictures)
    if request.method == "POST" and form.is_valid():
        refused, stored = _answer_submit(form, assignment.pk, assignment.worker, exemplar_ids)
        if refused is not None:
            return _framed_by(render(request, "crowd/external_hit.html", {"refused": str(refused)},
                                     status=refused.status_code), site)
        if stored:
            assignment.refresh_from_db()
    if assignment.status in (Assignment.Status.PENDING, Assignment.Status.SUBMITTED):
        return _framed_by(_submit_page(request, assignment, submit_to), site)
    return _framed_by(render(request, "crowd/external_hit.html", {"pictures": pictures,
                                                               **_form_context(hit, form)}), site)


def _submit_page(request: HttpRequest, assignment: Assignment, submit_to: str) -> HttpResponse:
    """The stored answer, posted to MTurk by the browser: MTurk's externalSubmit needs assignmentId and at
    least one answer field (MTurk keeps them; this site's copy is the one aggregated)."""
    annotation = assignment.annotation
    fields: list[tuple[str, object]] = (
        [("verdict", annotation.verdict)] if assignment.hit.kind == HitKind.VERIFY else
        [("word", annotation.word), ("category", annotation.category), ("confidence", annotation.confidence or "")])
    fields.append(("unitcrowd_assignment", assignment.pk))
    return render(request, "crowd/mturk_submit.html", {
        "submit_url": submit_to + "/mturk/externalSubmit", "assignment_id": assignment.external_id,
        "fields": fields})


def _qualification_gate(request: HttpRequest, *, worker, project: Project, channel: str,
                        links_until) -> HttpResponse | None:
    """None when `worker` may go on to the HIT (qualified, or the project has no gold units to test with;
    a blocked worker is refused further on); else the test, or the page of a failed test."""
    if profile_get(worker).is_blocked:
        return None
    state = qual.qualification_state(worker, project)
    if state.qualified or state.no_gold_units:
        return None
    mturk = channel in MTURK_CHANNELS
    words = {"crowd_word": "HITs" if mturk else "studies",
             "return_line": ("Please return this HIT on Mechanical Turk." if mturk else
                             "Please return this study on Prolific."),
             "fail_line": ("this HIT cannot be paid and must be returned on Mechanical Turk." if mturk else
                           "this study cannot be paid and must be returned on Prolific."),
             "with_csrf": not mturk}
    attempt_id = request.POST.get("qualification_attempt", "") if request.method == "POST" else ""
    if attempt_id.isdigit():
        attempt = QualificationAttempt.objects.filter(pk=int(attempt_id), user=worker, project=project,
                                                      finished_at__isnull=True).first()
        if attempt is not None:
            answers = {unit_id: (request.POST.get(f"word_{unit_id}", ""), request.POST.get(f"category_{unit_id}", ""))
                       for unit_id in attempt.unit_ids}
            with contextlib.suppress(CrowdError):  # handed in twice at once: the other request graded it
                attempt = qual.qualification_submit(attempt=attempt, answers=answers)
            if attempt.passed:
                if mturk:
                    transaction.on_commit(lambda: enqueue("tasks.crowd.mturk_qualify", project.pk, channel,
                                                          worker.username.removeprefix("mturk-")))
                return redirect(request.get_full_path())  # the HIT itself, now as a GET
            state = qual.qualification_state(worker, project)
    if not state.can_take:
        last = state.last_attempt
        failed = {"attempt": last, "retake_at": state.retake_at,
                  "pass_mark": qual.pass_mark(project, last.total) if last is not None else 0}
        return render(request, "crowd/external_qualification.html", {"failed": failed, **words})
    attempt = qual.qualification_start(user=worker, project=project)
    units = [{"number": number, "id": unit_id,
              "exemplars": signed_attempt_pictures(attempt, unit_id, expires_at=links_until)}
             for number, unit_id in enumerate(attempt.unit_ids, start=1)]
    return render(request, "crowd/external_qualification.html", {
        "attempt": attempt, "units": units, "categories": CATEGORY_CHOICES, "word_max": WORD_MAX,
        "pass_mark": qual.pass_mark(project, attempt.total), **words})


def _framed_by(response: HttpResponse, site: str) -> HttpResponse:
    # django-csp reads these per response: this page alone may be framed by MTurk and post to it.
    response._csp_replace = {"frame-ancestors": [site], "form-action": [SELF, site]}  # type: ignore[attr-defined]
    return response


# --- Prolific ----------------------------------------------------------------------------------------

@require_http_methods(["GET", "POST"])
def prolific_study(request: HttpRequest, batch_id: int) -> HttpResponse:
    """A Prolific study's page (units/crowd/prolific.py): one HIT after another, then the completion URL.

    The participant arrives with PROLIFIC_PID, STUDY_ID and SESSION_ID; they are kept in this browser's
    session (the page is opened directly, not framed), so the answer form needs no ids of its own."""
    batch = HitBatch.objects.select_related("project").filter(pk=batch_id, channel=Channel.PROLIFIC).first()
    if batch is None:
        raise Http404("No such study.")
    ids = {key: request.GET.get(key, "") for key in ("PROLIFIC_PID", "STUDY_ID", "SESSION_ID")}
    if all(ids.values()):
        if not all(PROLIFIC_ID.match(v) for v in ids.values()):
            return render(request, "crowd/external_hit.html", {"refused": "Open this study from Prolific."},
                          status=400)
        HitBatch.objects.filter(pk=batch.pk, external_id="").update(external_id=ids["STUDY_ID"])
        batch.refresh_from_db(fields=["external_id"])
        if batch.external_id != ids["STUDY_ID"]:
            return render(request, "crowd/external_hit.html", {"refused": "This page belongs to another study."},
                          status=400)
        request.session[f"prolific-{batch.pk}"] = ids
    ids = request.session.get(f"prolific-{batch.pk}") or {}
    if not ids:
        return render(request, "crowd/external_hit.html", {"refused": "Open this study from Prolific."}, status=400)
    worker = outside_worker(ids["PROLIFIC_PID"], crowd="prolific")
    gate = _qualification_gate(request, worker=worker, project=batch.project, channel=batch.channel,
                               links_until=timezone.now() + timedelta(seconds=batch.assignment_duration_seconds))
    if gate is not None:
        return gate
    try:
        assignment = participant_next_assignment(batch=batch, worker=worker, session_id=ids["SESSION_ID"])
        if assignment is None:
            return redirect(completion_redirect(batch))
    except CrowdError as exc:
        return render(request, "crowd/external_hit.html", {"refused": str(exc)}, status=exc.status_code)
    pictures = signed_hit_pictures(assignment.hit, expires_at=assignment.deadline)
    exemplar_ids = {p.pk: p.exemplar_id for p in pictures}
    form = _hit_form(assignment.hit, request.POST if request.method == "POST" else None, pictures)
    if request.method == "POST" and form.is_valid():
        refused, stored = _answer_submit(form, assignment.pk, worker, exemplar_ids)
        if refused is not None:
            return render(request, "crowd/external_hit.html", {"refused": str(refused)}, status=refused.status_code)
        if stored:
            return redirect("crowd:prolific_study", batch_id=batch.pk)  # the next HIT, or the completion URL
    stored = channel_settings_of(batch.project_id)
    done = Assignment.objects.filter(worker=worker, hit__batch=batch, status__in=[
        Assignment.Status.PENDING, Assignment.Status.SUBMITTED, Assignment.Status.APPROVED,
        Assignment.Status.REJECTED]).count()
    return render(request, "crowd/external_hit.html", {
        "pictures": pictures, **_form_context(assignment.hit, form), "with_csrf": True,
        "progress": (done + 1, stored.prolific_hits_per_participant if stored else 10)})


def _hit_form(hit: Hit, data, pictures) -> AnswerForm | VerdictForm:
    """A labelling HIT's answer form, or a verify HIT's yes / no / unsure."""
    if hit.kind == HitKind.VERIFY:
        return VerdictForm(data)
    return AnswerForm(data, exemplar_ids=[p.pk for p in pictures])


def _form_context(hit: Hit, form: AnswerForm | VerdictForm) -> dict:
    if isinstance(form, VerdictForm):
        return {"form": form, "verify": True, "proposed_label": hit.proposed_label, "verdicts": VERDICTS_SHOWN,
                "chosen": form["verdict"].value() or ""}
    return {"form": form, "marked": {str(v) for v in form["non_fitting"].value() or []}}


def _answer_submit(form: AnswerForm | VerdictForm, assignment_id: int, worker,
                   exemplar_ids: dict) -> tuple[CrowdError | None, bool]:
    """Hand in a valid form's answer: (None, True) when stored; (None, False) when the service found fault
    with a field (put on the form); (the refusal, False) when the assignment may not be answered."""
    data = form.cleaned_data
    try:
        if isinstance(form, VerdictForm):
            verdict_submit(assignment_id=assignment_id, worker=worker, verdict=data["verdict"])
        else:
            annotation_submit(assignment_id=assignment_id, worker=worker, word=data["word"],
                              category=data["category"], confidence=data["confidence"],
                              non_fitting=[exemplar_ids[key] for key in data["non_fitting"]],
                              description=data["description"])
    except InvalidAnswer as exc:
        for field, errors in exc.errors.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
        return None, False
    except CrowdError as exc:
        return exc, False
    outside_answer_confirm_later(assignment_id)
    return None, True
