"""Annotator pages: home, instructions, qualification, the queue and the labelling form."""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from statistics import median

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from units.dissection.models import Unit
from units.projects.models import Project

from .. import qualification as qual
from ..annotators import profile_get
from ..errors import CrowdError, InvalidAnswer
from ..forms import AnswerForm
from ..models import (
    CATEGORY_CHOICES, Assignment, Hit, HitBatch, HitKind, Qualification, QualificationAttempt, Skip,
)
from ..selectors import (
    annotator_current,
    annotator_earnings_by_project,
    annotator_recent_work,
    annotator_stats,
    assignment_retakable,
    hit_pictures,
    qualification_exemplars,
    shown_pictures,
)
from ..services import (
    EXTEND_WITHIN_SECONDS,
    SKIP_UNDO_SECONDS,
    annotation_submit,
    assignment_claim,
    assignment_extend,
    assignment_extended,
    assignment_retake,
    assignment_return,
    extension_seconds,
    hit_skip,
    hit_skip_undo,
    open_hits_for,
)
from ..validation import WORD_MAX
from .verify import verify_work

# Where each field's error points to on the labelling page (the error summary links there).
_ERROR_ANCHORS = {"category": ("categories", "Category"), "word": ("id_word", "Word"),
                  "description": ("id_description", "Description"), "confidence": ("confidence", "Confidence"),
                  "non_fitting": ("exemplars", "Marked images")}


# Projects listed with their test on the annotator's pages; more are reached by their address.
QUALIFICATION_ROWS = 50


def _qualifications(user: User) -> list[dict]:
    """Per project whose test the user may see: the project and where they stand with its test."""
    now = timezone.now()
    return [{"project": project, "state": qual.qualification_state(user, project, now=now)}
            for project in qual.offered_projects(user)[:QUALIFICATION_ROWS]]


@login_required
def home(request: HttpRequest) -> HttpResponse:
    profile = profile_get(request.user)
    stats = annotator_stats(request.user)
    qualified_any = Qualification.objects.filter(user=request.user).exists()
    return render(request, "crowd/home.html", {
        "profile": profile,
        "stats": stats,
        "current": annotator_current(request.user),
        "qualifications": _qualifications(request.user),
        "qualified_any": qualified_any,
        "recent": annotator_recent_work(request.user),
        "per_project": annotator_earnings_by_project(request.user),
        # A skipped HIT's assignment is stored as returned; the list says which the annotator skipped.
        "skipped_hits": set(Skip.objects.filter(worker=request.user).values_list("hit_id", flat=True)),
        **_work_offered(request.user, qualified_any and not profile.is_blocked, handed_in=stats.submitted),
    })


# Below this many HITs handed in, an annotator is new: the home page puts verify HITs first (a yes/no
# question is learnt in seconds) instead of letting "any batch" hand them label HITs one after the other.
NEW_ANNOTATOR_HITS = 10

# The two kinds of work as the home page offers them: (kind, heading, what it asks, start button).
_KINDS = [
    (HitKind.VERIFY, "Verify labels", "A yes/no question: does a proposed word describe a unit's pictures? "
                                      "A few seconds each, and a good way to start.", "Start verifying"),
    (HitKind.LABEL, "Label units", "Name what a unit's pictures have in common, choose its category and mark "
                                   "the pictures that do not fit.", "Start labelling"),
]


def _work_offered(user: User, can_work: bool, *, handed_in: int) -> dict:
    """The batches open to this annotator, and per kind of work its HITs left; a new annotator is steered
    to verify work while there is some."""
    if not can_work:
        return {"batches": [], "kinds": [], "steer_to_verify": False}
    batches = _open_batches(user)
    left: Counter[str] = Counter()
    for b in batches:
        left[b["batch"].kind] += b["left"]
    steer = handed_in < NEW_ANNOTATOR_HITS and left[HitKind.VERIFY] > 0
    kinds = [{"kind": kind, "title": title, "about": about, "start": start, "left": left[kind],
              "recommended": steer and kind == HitKind.VERIFY}
             for kind, title, about, start in _KINDS]
    if not steer:
        kinds.reverse()  # labelling is the main work; verify HITs stay one click away
    return {"batches": batches, "kinds": kinds, "steer_to_verify": steer}


# Other annotators' times needed before a batch's "about N s per HIT" is shown: one or two times (or
# one's own) say little about how long a HIT takes.
MIN_TIMES_FOR_MEDIAN = 3


def _open_batches(user: User) -> list[dict]:
    """The batches with work for this annotator: HITs left, reward, and how long a HIT takes (the median of
    other annotators' times so far; before there are enough, the time allowed), so they know before starting."""
    left = Counter(open_hits_for(user, now=timezone.now()).values_list("batch_id", flat=True))
    out = []
    for batch in HitBatch.objects.filter(pk__in=left).select_related("project").order_by("-created_at"):
        times = list(Assignment.objects.filter(hit__batch=batch, work_seconds__isnull=False).exclude(worker=user)
                     .order_by("-submitted_at").values_list("work_seconds", flat=True)[:200])
        times = times if len(times) >= MIN_TIMES_FOR_MEDIAN else []
        out.append({"batch": batch, "left": left[batch.pk], "median_seconds": median(times) if times else None,
                    "allowed_minutes": batch.assignment_duration_seconds // 60})
    return out


def _sitting(request: HttpRequest, hit: Hit) -> dict:
    """This sitting's counter (kept in the session): HITs handed in, their rewards, and the HITs still open to
    this annotator in every batch (the next HIT may come from any of them)."""
    return {"done": request.session.get("sitting_done", 0),
            "earned": Decimal(request.session.get("sitting_earned", "0")),
            "left": open_hits_for(request.user, now=timezone.now()).count()}


def _sitting_add(request: HttpRequest, hit: Hit) -> None:
    request.session["sitting_done"] = request.session.get("sitting_done", 0) + 1
    request.session["sitting_earned"] = str(Decimal(request.session.get("sitting_earned", "0")) + hit.reward)


@login_required
def instructions(request: HttpRequest) -> HttpResponse:
    return render(request, "crowd/instructions.html", {"categories": CATEGORY_CHOICES})


def _attempt_feedback(attempt: QualificationAttempt | None, project: Project) -> dict | None:
    """Per unit of a failed attempt: the pictures, what was answered and whether it matched (not the known
    answer: gold units come back in later tests and in the HIT stream)."""
    if attempt is None or attempt.finished_at is None or attempt.passed:
        return None
    labels = dict(CATEGORY_CHOICES)
    units = []
    for item in _attempt_units(attempt):
        given = attempt.answers.get(str(item["id"]), {})
        units.append({**item, "word": given.get("word", ""), "category": labels.get(given.get("category", ""), ""),
                      "correct": bool(given.get("correct")),
                      # Attempts graded before the parts were stored say only "not matched" (None).
                      "word_ok": given.get("word_ok"), "category_ok": given.get("category_ok")})
    return {"attempt": attempt, "units": units, "pass_mark": qual.pass_mark(project, attempt.total)}


@login_required
def qualification(request: HttpRequest) -> HttpResponse:
    """The projects whose test the annotator may take, and where they stand with each."""
    return render(request, "crowd/qualifications.html", {"qualifications": _qualifications(request.user)})


@login_required
def qualification_test(request: HttpRequest, project_id: int) -> HttpResponse:
    """One project's test; a project that offers the user nothing (and that they are not a member of) is a 404."""
    project = get_object_or_404(qual.offered_projects(request.user), pk=project_id)
    here = redirect("crowd:qualification_test", project_id=project.pk)
    state = qual.qualification_state(request.user, project)
    feedback = _attempt_feedback(state.last_attempt, project)
    if not state.can_take:
        return render(request, "crowd/qualification.html", {"project": project, "state": state, "feedback": feedback})
    try:
        attempt = qual.qualification_start(user=request.user, project=project)
    except CrowdError as exc:
        messages.error(request, str(exc))
        return redirect("crowd:home")
    if request.method == "POST":
        answers = {
            unit_id: (request.POST.get(f"word_{unit_id}", ""), request.POST.get(f"category_{unit_id}", ""))
            for unit_id in attempt.unit_ids
        }
        try:
            attempt = qual.qualification_submit(attempt=attempt, answers=answers)
        except CrowdError as exc:
            messages.error(request, str(exc))
            return here
        if attempt.passed:
            messages.success(request, f"You passed the qualification of {project.name} ({attempt.correct} of "
                                      f"{attempt.total}). You can start working on its HITs.")
            return redirect("crowd:home")
        messages.error(request, f"Not passed: {attempt.correct} of {attempt.total} matched the known concept; "
                                f"passing needs {qual.pass_mark(project, attempt.total)}. See each unit below.")
        return here
    return render(request, "crowd/qualification.html", {
        "project": project, "state": state, "attempt": attempt, "units": _attempt_units(attempt),
        "categories": CATEGORY_CHOICES, "feedback": feedback, "pass_mark": qual.pass_mark(project, attempt.total),
        "word_max": WORD_MAX,
    })


def _attempt_units(attempt: QualificationAttempt) -> list[dict]:
    units = Unit.objects.in_bulk(attempt.unit_ids)
    shown = []
    for number, unit_id in enumerate(attempt.unit_ids, start=1):
        if unit_id not in units:
            continue
        shown.append({"number": number, "id": unit_id, "exemplars": shown_pictures(qualification_exemplars(unit_id))})
    return shown


@login_required
def next_assignment(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        # A bookmarked or reloaded /crowd/next/ would otherwise be a blank 405 page; claiming stays POST-only.
        return redirect("crowd:home")
    # "Start" on a batch's row, or on a kind of work, keeps this annotator in that batch or kind (kept in the
    # session) until it has no HIT left for them; the plain "Start working" takes HITs from any batch.
    batch_id = _chosen_batch(request.POST.get("batch", ""))
    kind = request.POST.get("kind", "")
    for key, value in ((CHOSEN_BATCH, batch_id), (CHOSEN_KIND, kind if kind in HitKind.values else None)):
        if value is None:
            request.session.pop(key, None)
        else:
            request.session[key] = value
    try:
        assignment = _claim(request)
    except CrowdError as exc:
        messages.error(request, str(exc))
        return redirect("crowd:home")
    if assignment is None:
        messages.info(request, "No HIT is waiting for you right now. Come back later.")
        return redirect("crowd:home")
    return redirect("crowd:work", pk=assignment.pk)


CHOSEN_BATCH = "crowd_batch"
CHOSEN_KIND = "crowd_kind"


def _chosen_batch(raw: str) -> int | None:
    return int(raw) if raw.isdigit() and len(raw) < 19 else None


def _claim(request: HttpRequest) -> Assignment | None:
    """The next assignment, from the batch or kind of work the annotator chose while it has HITs for them,
    else any."""
    batch_id, kind = request.session.get(CHOSEN_BATCH), request.session.get(CHOSEN_KIND)
    if batch_id is not None or kind is not None:
        assignment = assignment_claim(worker=request.user, batch_id=batch_id, kind=kind)
        if assignment is not None:
            return assignment
        request.session.pop(CHOSEN_BATCH, None)
        request.session.pop(CHOSEN_KIND, None)
        chose = "The batch you chose" if batch_id is not None else f"The {kind} work you chose"
        messages.info(request, f"{chose} has no HIT left for you: HITs now come from any batch.")
    return assignment_claim(worker=request.user)


def _own_assignment(request: HttpRequest, pk: int) -> Assignment:
    """The annotator's own assignment; anyone else's answers 404 like an unknown id (ids reveal nothing)."""
    return get_object_or_404(Assignment.objects.select_related("hit__unit__layer", "hit__batch"), pk=pk,
                             worker_id=request.user.pk)


@login_required
def work(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _own_assignment(request, pk)
    if assignment.hit.kind == HitKind.VERIFY:
        return verify_work(request, assignment, go_on=_go_on)
    exemplars = hit_pictures(assignment.hit)  # opaque ids and URLs: a sentinel looks like any picture
    ids = [ex.pk for ex in exemplars]
    exemplar_ids = {ex.pk: ex.exemplar_id for ex in exemplars}
    if request.method == "POST":
        form = AnswerForm(request.POST, exemplar_ids=ids)
        if form.is_valid():
            data = form.cleaned_data
            try:
                annotation_submit(
                    assignment_id=assignment.pk, worker=request.user, word=data["word"], category=data["category"],
                    non_fitting=[exemplar_ids[key] for key in data["non_fitting"]], confidence=data["confidence"],
                    description=data["description"],
                )
            except InvalidAnswer as exc:
                for field, errors in exc.errors.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            except CrowdError as exc:
                assignment.refresh_from_db()
                if assignment.status in (Assignment.Status.ACCEPTED, Assignment.Status.ABANDONED) \
                        and assignment.deadline <= timezone.now():
                    return redirect("crowd:work", pk=assignment.pk)  # the expiry page: draft kept, retake offered
                messages.error(request, str(exc))
                return redirect("crowd:home")
            else:
                _sitting_add(request, assignment.hit)
                request.session.pop("undo_skip", None)  # a submit ends the chance to undo a skip
                messages.success(request, "Submitted. Thank you!")
                return _go_on(request, done_hit=assignment.hit_id)
    else:
        expired = (assignment.status == Assignment.Status.ABANDONED
                   or (assignment.status == Assignment.Status.ACCEPTED and assignment.deadline <= timezone.now()))
        if expired:
            # The answer typed so far is still in the browser's draft: say so, and offer the HIT again if it can be.
            return render(request, "crowd/expired.html", {
                "assignment": assignment, "retakable": assignment_retakable(assignment)})
        if assignment.status != Assignment.Status.ACCEPTED:
            messages.info(request, f"This assignment is {assignment.get_status_display().lower()}.")
            return redirect("crowd:home")
        form = AnswerForm(exemplar_ids=ids)
    marked = {str(v) for v in form["non_fitting"].value() or []}
    plain = request.GET.get("view") == "plain"
    return render(request, "crowd/work.html", {
        "assignment": assignment, "hit": assignment.hit, "unit": assignment.hit.unit, "form": form,
        "exemplars": [{"ex": ex, "marked": ex.pk in marked, "key": i + 1} for i, ex in enumerate(exemplars)],
        "plain": plain, "categories": CATEGORY_CHOICES, "error_summary": _error_summary(form),
        "sitting": _sitting(request, assignment.hit),
        "seconds_left": max(0, int((assignment.deadline - timezone.now()).total_seconds())),
        "undo_skip": _undoable_skip(request),
        # The script shows the extend button in the last EXTEND_WITHIN_SECONDS; the service checks again.
        "extend": None if assignment_extended(assignment) else {
            "label": _duration_label(extension_seconds(assignment.hit)), "within": EXTEND_WITHIN_SECONDS},
    })


def _duration_label(seconds: int) -> str:
    """"7 minutes 30 seconds", not a rounded "7 minutes": the button promises exactly what it gives."""
    minutes, rest = divmod(seconds, 60)
    parts = [f"{minutes} minute{'s' if minutes != 1 else ''}"] if minutes else []
    return " ".join(parts + ([f"{rest} seconds"] if rest else []))


def _undoable_skip(request: HttpRequest) -> Skip | None:
    """The annotator's last skip while it can still be undone (the service checks again on POST)."""
    skip_id = request.session.get("undo_skip")
    skip = Skip.objects.filter(pk=skip_id, worker=request.user).select_related("hit").first() if skip_id else None
    if skip is None or (timezone.now() - skip.created_at).total_seconds() > SKIP_UNDO_SECONDS:
        request.session.pop("undo_skip", None)
        return None
    return skip


@login_required
@require_POST
def undo_skip(request: HttpRequest, pk: int) -> HttpResponse:
    """Take back a skip: the HIT again when its slot is still free, else the queue goes on as before.
    Someone else's skip answers 404 like an unknown one."""
    get_object_or_404(Skip, pk=pk, worker_id=request.user.pk)
    try:
        assignment = hit_skip_undo(skip_id=pk, worker=request.user)
    except CrowdError as exc:
        messages.error(request, str(exc))
        return redirect("crowd:home")
    request.session.pop("undo_skip", None)
    if assignment is None:
        messages.info(request, "Skip undone, but the HIT's slots are taken now; it may be offered to you later.")
        return _go_on(request)
    messages.success(request, "Skip undone: here is the HIT again.")
    return redirect("crowd:work", pk=assignment.pk)


def _error_summary(form: AnswerForm) -> list[tuple[str, str, str]]:
    """(anchor, field label, message) for every error, so the banner on top says it all and links to the field."""
    summary = []
    for field, errors in form.errors.items():
        anchor, label = _ERROR_ANCHORS.get(field, ("", ""))
        summary.extend((anchor, label, str(error)) for error in errors)
    return summary


def _go_on(request: HttpRequest, *, done_hit: int | None = None) -> HttpResponse:
    """After a submit, return or skip, straight to the next HIT: labelling unit after unit without detours.

    `done_hit` tells the page's script that this HIT's draft (kept in the browser) can go."""
    try:
        assignment = _claim(request)
    except CrowdError:
        assignment = None
    response = redirect("crowd:home") if assignment is None else redirect("crowd:work", pk=assignment.pk)
    if assignment is None:
        messages.info(request, "That was the last HIT available to you for now.")
    if done_hit is not None:
        response["Location"] += f"?done={done_hit}"
    return response


def _give_up(request: HttpRequest, pk: int, *, service, done: str) -> HttpResponse:
    """Return or skip: call the service on the annotator's own assignment, say what happened, go on to the
    next HIT (both the same way: the annotator asked for other work, not for the home page)."""
    assignment = _own_assignment(request, pk)
    try:
        result = service(assignment_id=pk, worker=request.user)
    except CrowdError as exc:
        messages.error(request, str(exc))
        return redirect("crowd:home")
    messages.info(request, done)
    if service is hit_skip:  # the next page offers "Undo skip" (kept until a submit or SKIP_UNDO_SECONDS)
        request.session["undo_skip"] = result.pk
    return _go_on(request, done_hit=assignment.hit_id)


@login_required
@require_POST
def return_assignment(request: HttpRequest, pk: int) -> HttpResponse:
    return _give_up(request, pk, service=assignment_return, done="Returned: the HIT is offered to other annotators.")


@login_required
@require_POST
def skip_hit(request: HttpRequest, pk: int) -> HttpResponse:
    return _give_up(request, pk, service=hit_skip, done="Skipped: you will not see this HIT again.")


@login_required
@require_POST
def retake_assignment(request: HttpRequest, pk: int) -> HttpResponse:
    """Take the HIT again after this assignment expired; the page restores the browser's draft of the answer."""
    _own_assignment(request, pk)
    try:
        assignment = assignment_retake(assignment_id=pk, worker=request.user)
    except CrowdError as exc:
        messages.error(request, str(exc))
        return redirect("crowd:home")
    messages.success(request, "The HIT is yours again, with a new deadline.")
    return redirect("crowd:work", pk=assignment.pk)


@login_required
@require_POST
def extend_assignment(request: HttpRequest, pk: int) -> HttpResponse:
    """More time, once, near the end; back to the form (the browser's draft fills it in, the timer restarts)."""
    _own_assignment(request, pk)
    try:
        assignment = assignment_extend(assignment_id=pk, worker=request.user)
    except CrowdError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Extended: you have until {assignment.deadline:%H:%M} UTC.")
    return redirect("crowd:work", pk=pk)
