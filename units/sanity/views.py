"""Pages of the sanity check (requesters only): list and start reports, the report page, publishing."""
from __future__ import annotations

import mimetypes

from django.contrib import messages
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotate_site.roles import requester_required
from units.projects.access import WORK
from units.projects.current import current_project

from . import selectors
from .errors import SanityError
from .forms import PublishForm, StartForm
from .models import SanityReport
from .services import (
    report_out_dir, sanity_minutes, sanity_report_create, sanity_report_start,
    sanity_runs_publish,
)


def _get(pk: int) -> SanityReport:
    try:
        return selectors.report_get(pk)
    except SanityReport.DoesNotExist:
        raise Http404("No such sanity report.") from None


@requester_required
@require_http_methods(["GET", "POST"])
def report_list(request: HttpRequest) -> HttpResponse:
    form = StartForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            report = sanity_report_create(user=request.user, **form.cleaned_data)
        except SanityError as exc:
            form.add_error(None, str(exc))
        else:
            sanity_report_start(report=report)
            data = form.cleaned_data
            minutes = sanity_minutes(seeds=data["seeds"], quick=data["quick"], network=data["network"] or "mixturenet")
            about = f" It takes about {minutes:.0f} minute(s) on two idle cores." if minutes else ""
            messages.success(request, f"Sanity report {report.pk} queued.{about}")
            return redirect("sanity:detail", pk=report.pk)
    return render(request, "sanity/report_list.html", {"reports": selectors.report_list(), "form": form})


@requester_required
def report_detail(request: HttpRequest, pk: int) -> HttpResponse:
    report = _get(pk)
    runs = selectors.report_runs(report)
    context = {
        "report": report,
        "blocks": selectors.report_blocks(report),
        "runs": runs,
        "publish_form": PublishForm(run_ids=[r["id"] for r in runs], initial={"runs": [r["id"] for r in runs[:1]]}),
        "jobs": report.jobs.select_related("network").order_by("id"),
        "crowd_rows": selectors.crowd_vs_truth(report),
    }
    return render(request, "sanity/report_detail.html", context)


@requester_required
@require_POST
def report_publish(request: HttpRequest, pk: int) -> HttpResponse:
    report = _get(pk)
    runs = selectors.report_runs(report)
    form = PublishForm(request.POST, run_ids=[r["id"] for r in runs])
    if not form.is_valid():
        messages.error(request, "Choose at least one run and one layer: " + "; ".join(
            f"{k}: {' '.join(v)}" for k, v in form.errors.items()))
        return redirect("sanity:detail", pk=pk)
    project = current_project(request, WORK)
    if project is None:
        messages.error(request, "Publishing needs a project where you may publish; create or join one first.")
        return redirect("sanity:detail", pk=pk)
    try:
        batch = sanity_runs_publish(project=project, report=report, run_ids=form.cleaned_data["runs"],
                                    layers=form.cleaned_data["layers"],
                                    user=request.user, assignments_per_hit=form.cleaned_data["assignments_per_hit"])
    except SanityError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, str(batch.report))
    return redirect("sanity:detail", pk=pk)


@requester_required
def report_file(request: HttpRequest, pk: int, path: str) -> FileResponse:
    """A file the report wrote (plots, exemplars); only names listed in the report are served."""
    report = _get(pk)
    if path not in set(report.files or []):
        raise Http404("The report has no such file.")
    full = report_out_dir(report) / path
    if not full.is_file():
        raise Http404("The report's file is gone from the disk.")
    content_type = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
    response = FileResponse(full.open("rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response
