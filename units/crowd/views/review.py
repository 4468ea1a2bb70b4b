"""Requester pages: review submitted work, manage annotators, crowd settings and gold units."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.http import HttpRequest, HttpResponse
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from units.dissection.models import Unit
from annotate_site.paging import page_of
from annotate_site.roles import member_required, requester_required
from units.projects.access import REVIEW, WORK, scope
from units.projects.current import current_project
from units.projects.models import Project

from ..annotators import (
    annotator_block, annotator_qualify, annotator_unblock, annotator_unflag, annotator_unqualify, crowd_settings_update,
    invite_code_create, invite_code_deactivate, qualification_settings_update,
)
from ..errors import CrowdError, InvalidAnswer
from ..external_work import outside_worker_block, outside_worker_bonus
from ..forms import (
    AnnotatorActionForm, CrowdSettingsForm, GoldForm, InviteCodeForm, QualificationSettingsForm, ReviewForm,
)
from ..models import Assignment, CrowdSettings, Hit, InviteCode, QualificationSettings
from ..review import assignments_review, unit_mark_gold, unit_unmark_gold
from ..selectors import (
    annotator_stats, annotators_overview, annotators_quality, hit_assignments_for_review, hit_exemplars,
    hits_for_review,
)

MAX_ID = 2**63 - 1  # the largest primary key a BigAutoField (and SQLite) can hold


def _reviewable_hits(request: HttpRequest):
    return scope(hits_for_review(), request.user, REVIEW, path="batch__project")


def _gold_unit_id(request: HttpRequest, raw) -> int:
    """A unit id of a project where the user may work (the review page marks its HIT's unit, whichever
    project is current); a unit of any other project, or none, is a 404: ids reveal nothing."""
    unit_id = int(raw)
    if unit_id > MAX_ID or not scope(Unit.objects.filter(pk=unit_id), request.user, WORK,
                                     path="layer__job__project").exists():
        raise Http404(f"There is no unit with id {unit_id} in your projects.")
    return unit_id


@member_required
def review_list(request: HttpRequest) -> HttpResponse:
    page = page_of(request, _reviewable_hits(request))
    # Two lists on one page, each paged by its own parameter.
    waiting = page_of(request, scope(Assignment.objects, request.user, REVIEW, path="hit__batch__project").filter(
        status=Assignment.Status.SUBMITTED).select_related(
        "hit__unit__layer", "hit__batch", "worker", "annotation").order_by("id"), param="waiting_page")
    return render(request, "crowd/review_list.html", {"page": page, "waiting": waiting,
                                                      "selected": _selected(request)})


def _selected(request: HttpRequest) -> set[int]:
    """Assignments ticked before a refused decision (?selected=1,2): ticked again, so nothing is redone."""
    return {int(v) for v in request.GET.get("selected", "").split(",") if v.isdigit() and int(v) <= MAX_ID}


@member_required
def review_hit(request: HttpRequest, pk: int) -> HttpResponse:
    hit = get_object_or_404(scope(Hit.objects.select_related("unit__layer", "batch"), request.user, REVIEW,
                                  path="batch__project"), pk=pk)
    exemplars = hit_exemplars(hit)
    assignments = list(hit_assignments_for_review(hit))
    records = {}
    for a in assignments:
        annotation = getattr(a, "annotation", None)
        marked = {ex.pk for ex in annotation.non_fitting.all()} if annotation else set()
        # The strip as this annotator saw it, numbered from 1, the images they marked crossed out.
        a.strip = [{"ex": ex, "number": i, "marked": ex.pk in marked} for i, ex in enumerate(exemplars, start=1)]
        if a.worker_id not in records:
            records[a.worker_id] = annotator_stats(a.worker)
        a.record = records[a.worker_id]
    following = _reviewable_hits(request).filter(waiting__gt=0).exclude(pk=hit.pk).first()
    return render(request, "crowd/review_hit.html", {
        "hit": hit, "assignments": assignments, "exemplars": exemplars, "next_hit": following,
        "selected": _selected(request),
        "gold_form": GoldForm(initial={"unit_id": hit.unit_id, "gold_word": hit.unit.gold_word,
                                       "gold_category": hit.unit.gold_category or None}),
    })


@member_required
@require_POST
def review_decide(request: HttpRequest) -> HttpResponse:
    # Ids beyond a 64-bit key cannot exist, and SQLite cannot even compare them (a 500), so they are
    # left out of the choices and the form refuses them like any unknown id; so are ids of
    # assignments outside the projects where the user may review.
    ids = [int(v) for v in request.POST.getlist("assignment_ids") if v.isdigit() and int(v) <= MAX_ID]
    allowed = set(scope(Assignment.objects.filter(pk__in=ids), request.user, REVIEW, path="hit__batch__project")
                  .values_list("pk", flat=True))
    form = ReviewForm(request.POST, assignment_ids=[pk for pk in ids if pk in allowed])
    back = (request.POST.get("next") or "").split("?")[0]
    if not back.startswith("/crowd/review/"):
        back = "/crowd/review/"
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_keep_selection(back, ids))
    data = form.cleaned_data
    try:
        n = assignments_review(assignment_ids=data["assignment_ids"], approve=data["action"] == "approve",
                               reviewer=request.user,
                               feedback=data["feedback"])
    except CrowdError as exc:
        messages.error(request, str(exc))
        return redirect(_keep_selection(back, ids))
    else:
        verb = "Approved" if data["action"] == "approve" else "Rejected"
        messages.success(request, f"{verb} {n} assignment(s).")
    return redirect(back)


def _keep_selection(back: str, ids: list[int]) -> str:
    return f"{back}?selected={','.join(map(str, ids))}" if ids else back


@requester_required
def annotators(request: HttpRequest) -> HttpResponse:
    """Every annotator's record and quality; qualified or not for the current project (where the requester works)."""
    project = current_project(request, WORK)
    page = page_of(request, annotators_overview(project))
    quality = annotators_quality([u.pk for u in page.object_list], project)
    for u in page.object_list:
        u.quality = quality.get(u.pk, {})
    return render(request, "crowd/annotators.html", {"annotators": page.object_list, "page": page,
                                                     "project": project})


@requester_required
@require_POST
def annotator_action(request: HttpRequest, pk: int) -> HttpResponse:
    user = get_object_or_404(get_user_model(), pk=pk)
    form = AnnotatorActionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Unknown action.")
        return redirect("crowd:annotators")
    action, reason = form.cleaned_data["action"], form.cleaned_data["reason"]
    if action in ("qualify", "unqualify"):
        # For a project where the requester works; any other project (or none) is a 404.
        project_id = form.cleaned_data["project"]
        project = get_object_or_404(scope(Project.objects, request.user, WORK, path="pk"), pk=project_id or 0)
        if action == "qualify":
            annotator_qualify(user=user, project=project, by=request.user)
        else:
            annotator_unqualify(user=user, project=project)
        messages.success(request, f"{user.username}: {action} for {project.name} done.")
        return redirect("crowd:annotators")
    elif action == "block":
        try:  # an MTurk worker is blocked on MTurk too, so MTurk stops offering them the HITs
            queued = outside_worker_block(user=user, reason=reason, by=request.user)
        except CrowdError as exc:
            messages.error(request, str(exc))
            return redirect("crowd:annotators")
        freed = annotator_block(user=user, reason=reason)
        messages.info(request, f"{freed} open assignment(s) freed." + (
            f" Blocked on Mechanical Turk for {queued} project(s)." if queued else ""))
    elif action == "bonus":
        try:
            paid_on = outside_worker_bonus(user=user, amount=form.cleaned_data["amount"] or 0, reason=reason,
                                           by=request.user)
        except CrowdError as exc:
            messages.error(request, str(exc))
            return redirect("crowd:annotators")
        messages.info(request, f"Bonus queued on assignment {paid_on.pk} ({paid_on.get_status_display().lower()}).")
    elif action == "unblock":
        annotator_unblock(user=user)
    else:
        annotator_unflag(user=user)
    messages.success(request, f"{user.username}: {action} done.")
    return redirect("crowd:annotators")


@requester_required
def crowd_settings(request: HttpRequest) -> HttpResponse:
    current = CrowdSettings.load()
    form = CrowdSettingsForm(request.POST or None, instance=current, prefix="s")
    invite_form = InviteCodeForm(prefix="i")
    if request.method == "POST" and form.is_valid():
        crowd_settings_update(by=request.user, **{f: form.cleaned_data[f] for f in form.Meta.fields})
        messages.success(request, "Crowd settings saved.")
        return redirect("crowd:settings")
    return render(request, "crowd/settings.html", {
        "form": form, "invite_form": invite_form, "codes": InviteCode.objects.all()[:200],
    })


@requester_required
@require_POST
def invite_create(request: HttpRequest) -> HttpResponse:
    form = InviteCodeForm(request.POST, prefix="i")
    if form.is_valid():
        code = invite_code_create(by=request.user, **form.cleaned_data)
        messages.success(request, f"Invite code created: {code.code}")
    else:
        messages.error(request, "Give a number of uses between 1 and 10000.")
    return redirect("crowd:settings")


@requester_required
@require_POST
def invite_deactivate(request: HttpRequest, pk: int) -> HttpResponse:
    invite_code_deactivate(code=get_object_or_404(InviteCode, pk=pk))
    messages.success(request, "Invite code deactivated.")
    return redirect("crowd:settings")


@member_required
def gold(request: HttpRequest) -> HttpResponse:
    """The current project's gold units and qualification test settings (requesters and owners change them)."""
    project = current_project(request, WORK)
    if project is None:
        messages.error(request, "Gold units belong to a project where you are owner or requester; create or join one.")
        return redirect("projects:list")
    form = GoldForm(request.POST or None) if "settings" not in request.POST else GoldForm()
    settings_form = QualificationSettingsForm(request.POST if "settings" in request.POST else None,
                                              instance=QualificationSettings.of(project), prefix="q")
    if request.method == "POST":
        if "settings" in request.POST:
            if settings_form.is_valid():
                qualification_settings_update(project=project, by=request.user,
                                              **{f: settings_form.cleaned_data[f] for f in settings_form.Meta.fields})
                messages.success(request, f"Qualification test of {project.name} saved.")
                return redirect("crowd:gold")
        elif request.POST.get("unmark"):
            try:
                unit_unmark_gold(unit_id=_gold_unit_id(request, request.POST["unmark"]))
                messages.success(request, "Unit is no longer gold.")
            except (CrowdError, ValueError) as exc:
                messages.error(request, str(exc))
            return redirect("crowd:gold")
        elif form.is_valid():
            try:
                unit = unit_mark_gold(
                    unit_id=_gold_unit_id(request, form.cleaned_data["unit_id"]),
                    word=form.cleaned_data["gold_word"],
                    category=form.cleaned_data["gold_category"],
                )
            except InvalidAnswer as exc:
                for field, errors in exc.errors.items():
                    for error in errors:
                        form.add_error(field if field in form.fields else None, error)
            except CrowdError as exc:
                form.add_error("unit_id", str(exc))
            else:
                messages.success(request, f"{unit} is now gold.")
                return redirect(request.POST.get("next") if request.POST.get("next", "").startswith("/crowd/")
                                else "crowd:gold")
    units = (
        Unit.objects.filter(layer__job__project=project, is_gold=True)
        .select_related("layer__job__network")
        .order_by("layer_id", "index")
    )
    return render(request, "crowd/gold.html", {"form": form, "settings_form": settings_form, "units": units[:500],
                                               "project": project})
