"""Dashboards for requesters: overview, per layer, annotators, unit. Server-rendered, offline."""
from django.contrib import messages
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from units.dissection.models import Exemplar, Layer, Unit
from annotate_site.paging import page_of
from annotate_site.roles import member_required
from units.projects.access import VIEW, WORK, object_for
from units.projects.current import current_project

from .. import charts
from ..services import aggregation_request
from ..verification import unit_verifications, verification_table
from ..models import ExportJob
from ..selectors import (
    active_annotators, agreement_histogram, annotator_rows, annotators_with_work, assignments_per_hour,
    detector_counts, jobs_overview, latest_aggregation_runs, layer_comparison, layer_units, unit_annotations,
)


def _get(queryset, request: HttpRequest, pk: int, path: str, capability: str = VIEW):
    """A row of the user's projects; other ids answer 404 (see units.projects.access.object_for)."""
    try:
        return object_for(queryset, request.user, pk, capability, path=path)
    except queryset.model.DoesNotExist:
        raise Http404("No such item.") from None


@member_required
def overview(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    if project is None:
        return redirect("projects:list")
    jobs = jobs_overview(project)
    for row in jobs:
        row["status_url"] = reverse("dissection:job_status", args=[row["job"].pk])
        row["hits_percent"] = round(100 * row["hits_done"] / row["hits_total"]) if row["hits_total"] else 0
        row["job_percent"] = round(100 * (row["job"].progress or 0))
    per_hour = assignments_per_hour(project)
    return render(request, "results/overview.html", {
        "jobs": jobs,
        "per_hour": charts.bars(per_hour, width=720, height=140, gap=2),
        "per_hour_total": sum(v for _, v in per_hour),
        "active": active_annotators(project),
        "runs": latest_aggregation_runs(project),
        "project": project,
    })


@member_required
def layer_detail(request: HttpRequest, layer_id: int) -> HttpResponse:
    layer = _get(Layer.objects.select_related("job__network", "job__dataset"), request, layer_id, "job__project")
    counts = detector_counts(layer)
    comparison = layer_comparison(layer)
    histogram = agreement_histogram(layer)
    return render(request, "results/layer.html", {
        "layer": layer,
        "counts": counts,
        "iou_chart": charts.bars(list(counts["iou"]["by_category"].items())),
        "crowd_chart": charts.bars(list(counts["crowd"]["by_category"].items())),
        "agreement_chart": charts.bars(charts.histogram_bins(histogram)),
        "comparison": comparison,
        # An accuracy of 0.00 reads as "the crowd is always wrong"; before any answer it is "no answer yet".
        "crowd_answered": layer.units.filter(aggregate__n_annotations__gt=0).exists(),
        "confusion_columns": list(next(iter(comparison.confusion.values()), {}).keys()),
        "units": (page := page_of(request, layer_units(layer))).object_list,
        "page": page,
        "last_run": layer.aggregation_runs.first(),
        "export_kinds": ExportJob.Kind.choices,
        "verification": verification_table(layer),
        "verified_rows": _verified_rows(layer),
    })


def _verified_rows(layer: Layer) -> list[dict]:
    checks = unit_verifications(layer)
    units = Unit.objects.filter(pk__in=checks).order_by("index")
    return [{"unit": unit, "iou": checks[unit.pk].get("iou"), "crowd": checks[unit.pk].get("crowd")} for unit in units]


@member_required
@require_POST
def layer_aggregate(request: HttpRequest, layer_id: int) -> HttpResponse:
    layer = _get(Layer.objects, request, layer_id, "job__project", WORK)
    aggregation_request(layers=[layer])
    messages.success(request, f"Aggregation of {layer.name} queued; reload in a moment.")
    return redirect("results:layer", layer_id=layer.pk)


@member_required
def annotators(request: HttpRequest) -> HttpResponse:
    # Page the annotators first, then compute the rows of that page only.
    project = current_project(request)
    if project is None:
        return redirect("projects:list")
    page = page_of(request, annotators_with_work(project))
    return render(request, "results/annotators.html", {"rows": annotator_rows(page.object_list, project=project),
                                                       "page": page, "project": project})


@member_required
def unit_detail(request: HttpRequest, unit_id: int) -> HttpResponse:
    unit = _get(
        Unit.objects.select_related("layer__job__network", "aggregate").prefetch_related(
            Prefetch("exemplars", queryset=Exemplar.objects.filter(kind="top").order_by("rank")),
            "concept_scores__concept",
        ),
        request, unit_id, "layer__job__project",
    )
    annotations = list(unit_annotations(unit))
    for ann in annotations:
        # Image numbers as the annotator saw them (from 1), not the 0-based ranks.
        ann.marked_ranks = sorted(e.rank + 1 for e in ann.non_fitting.all() if e.kind == "top")
    return render(request, "results/unit.html", {
        "unit": unit, "aggregate": getattr(unit, "aggregate", None), "annotations": annotations,
        "scores": unit.concept_scores.all()[:5],
    })
