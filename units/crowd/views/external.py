"""The HIT pages of outside crowds: the one Mechanical Turk frames (ExternalQuestion; the rules are in
units/crowd/mturk.py) and a Prolific study's (units/crowd/prolific.py, at the end of this module).

MTurk opens `/crowd/mturk/hits/<id>/?hitId=..&assignmentId=..&workerId=..&turkSubmitTo=..` in an iframe on
its worker site. In preview (`assignmentId=ASSIGNMENT_ID_NOT_AVAILABLE`) the page shows the instructions and
the pictures with the inputs disabled; once accepted, the worker becomes a user of this site (no password),
answers here (stored first, with gold and sentinels checked as for every annotator), and the page then
posts `assignmentId` and the answer to `<turkSubmitTo>/mturk/externalSubmit`.

Only this page may be framed, and only by the batch's MTurk worker site (CSP frame-ancestors); it posts
only to itself and that site (form-action). It needs no CSRF token: it acts on no session (MTurk's
frame would not send this site's cookies anyway), and who the worker is comes from MTurk's parameters,
which MTurk's own list of assignments confirms before anything is paid (`batch_sync_mturk`).
"""
from __future__ import annotations

import re
from datetime import timedelta

from csp.constants import SELF
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..channels import MTURK_CHANNELS, channel_settings_of
from ..errors import CrowdError, InvalidAnswer
from ..external_work import outside_assignment_accept, outside_worker
from ..forms import AnswerForm
from ..models import Assignment, Channel, Hit, HitBatch
from ..mturk import WORKER_SITES
from ..picture_links import signed_hit_pictures
from ..prolific import PROLIFIC_ID, completion_redirect, participant_next_assignment
from ..services import annotation_submit

PREVIEW = "ASSIGNMENT_ID_NOT_AVAILABLE"
MTURK_ID = re.compile(r"^[A-Z0-9]{1,64}$")  # MTurk's HIT, assignment and worker ids
PREVIEW_LINKS_SECONDS = 3600


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def mturk_hit(request: HttpRequest, pk: int) -> HttpResponse:
    hit = Hit.objects.select_related("batch", "unit").filter(pk=pk, batch__channel__in=MTURK_CHANNELS).first()
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
            "preview": True, "pictures": pictures, "form": AnswerForm(exemplar_ids=[p.pk for p in pictures])})
        return _framed_by(response, site)
    worker_id, submit_to = params.get("workerId", ""), params.get("turkSubmitTo", "").rstrip("/")
    if not (MTURK_ID.match(assignment_id) and MTURK_ID.match(worker_id)) or submit_to != site:
        return _framed_by(render(request, "crowd/external_hit.html", {
            "refused": "Open this HIT from Mechanical Turk."}, status=400), site)
    try:
        assignment = outside_assignment_accept(hit=hit, worker=outside_worker(worker_id), external_id=assignment_id)
    except CrowdError as exc:
        return _framed_by(render(request, "crowd/external_hit.html", {"refused": str(exc)},
                                 status=exc.status_code), site)
    pictures = signed_hit_pictures(hit, expires_at=assignment.deadline)
    exemplar_ids = {p.pk: p.exemplar_id for p in pictures}
    form = AnswerForm(request.POST if request.method == "POST" else None, exemplar_ids=list(exemplar_ids))
    if request.method == "POST" and form.is_valid():
        refused, stored = _answer_submit(form, assignment.pk, assignment.worker, exemplar_ids)
        if refused is not None:
            return _framed_by(render(request, "crowd/external_hit.html", {"refused": str(refused)},
                                     status=refused.status_code), site)
        if stored:
            assignment.refresh_from_db()
    if assignment.status == Assignment.Status.SUBMITTED:
        return _framed_by(_submit_page(request, assignment, submit_to), site)
    marked = {str(v) for v in form["non_fitting"].value() or []}
    return _framed_by(render(request, "crowd/external_hit.html", {"pictures": pictures, "form": form,
                                                               "marked": marked}), site)


def _submit_page(request: HttpRequest, assignment: Assignment, submit_to: str) -> HttpResponse:
    """The stored answer, posted to MTurk by the browser: MTurk's externalSubmit needs assignmentId and at
    least one answer field (MTurk keeps them; this site's copy is the one aggregated)."""
    annotation = assignment.annotation
    fields = [("word", annotation.word), ("category", annotation.category),
              ("confidence", annotation.confidence or ""), ("unitcrowd_assignment", assignment.pk)]
    return render(request, "crowd/mturk_submit.html", {
        "submit_url": submit_to + "/mturk/externalSubmit", "assignment_id": assignment.external_id,
        "fields": fields})


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
    batch = HitBatch.objects.filter(pk=batch_id, channel=Channel.PROLIFIC).first()
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
    try:
        assignment = participant_next_assignment(batch=batch, worker=worker, session_id=ids["SESSION_ID"])
        if assignment is None:
            return redirect(completion_redirect(batch))
    except CrowdError as exc:
        return render(request, "crowd/external_hit.html", {"refused": str(exc)}, status=exc.status_code)
    pictures = signed_hit_pictures(assignment.hit, expires_at=assignment.deadline)
    exemplar_ids = {p.pk: p.exemplar_id for p in pictures}
    form = AnswerForm(request.POST if request.method == "POST" else None, exemplar_ids=list(exemplar_ids))
    if request.method == "POST" and form.is_valid():
        refused, stored = _answer_submit(form, assignment.pk, worker, exemplar_ids)
        if refused is not None:
            return render(request, "crowd/external_hit.html", {"refused": str(refused)}, status=refused.status_code)
        if stored:
            return redirect("crowd:prolific_study", batch_id=batch.pk)  # the next HIT, or the completion URL
    stored = channel_settings_of(batch.project_id)
    done = Assignment.objects.filter(worker=worker, hit__batch=batch, status__in=[
        Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REJECTED]).count()
    marked = {str(v) for v in form["non_fitting"].value() or []}
    return render(request, "crowd/external_hit.html", {
        "pictures": pictures, "form": form, "marked": marked, "with_csrf": True,
        "progress": (done + 1, stored.prolific_hits_per_participant if stored else 10)})


def _answer_submit(form: AnswerForm, assignment_id: int, worker, exemplar_ids: dict) -> tuple[CrowdError | None, bool]:
    """Hand in a valid form's answer: (None, True) when stored; (None, False) when the service found fault
    with a field (put on the form); (the refusal, False) when the assignment may not be answered."""
    data = form.cleaned_data
    try:
        annotation_submit(assignment_id=assignment_id, worker=worker, word=data["word"], category=data["category"],
                          confidence=data["confidence"],
                          non_fitting=[exemplar_ids[key] for key in data["non_fitting"]],
                          description=data["description"])
    except InvalidAnswer as exc:
        for field, errors in exc.errors.items():
            for error in errors:
                form.add_error(field if field in form.fields else None, error)
        return None, False
    except CrowdError as exc:
        return exc, False
    return None, True
