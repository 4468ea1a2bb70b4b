"""Reads of the sanity app: reports for the list page and the report page's blocks."""
from __future__ import annotations

from django.db.models import QuerySet
from django.urls import reverse

from .models import SanityReport


def report_list() -> QuerySet[SanityReport]:
    return SanityReport.objects.select_related("created_by").defer("json").order_by("-created")


def report_get(pk: int) -> SanityReport:
    return SanityReport.objects.select_related("created_by").prefetch_related("jobs").get(pk=pk)


def report_blocks(report: SanityReport) -> list[dict]:
    """The report as the engine renders it (same blocks as report.md/html), with picture URLs for the page."""
    if report.status != SanityReport.Status.SUCCEEDED or not report.json:
        return []
    from tasks.engine.sanity.render import blocks

    out = []
    for b in blocks(report.json):
        kind = b[0]
        if kind == "h":
            out.append({"kind": "h", "level": min(max(b[1] + 1, 2), 4), "text": b[2]})
        elif kind == "p":
            out.append({"kind": "p", "text": b[1]})
        elif kind == "ul":
            out.append({"kind": "ul", "items": b[1]})
        elif kind == "table":
            out.append({"kind": "table", "header": b[1], "rows": b[2]})
        elif kind == "img":
            out.append({"kind": "img", "alt": b[2],
                        "src": reverse("sanity:file", kwargs={"pk": report.pk, "path": b[1]})})
    return out


def report_runs(report: SanityReport) -> list[dict]:
    """Runs that can be published: id, variant, seed, accuracy, detectors, and whether already registered."""
    registered = {job.network.name for job in report.jobs.select_related("network")}
    runs = []
    for run in (report.json or {}).get("runs", []):
        detectors = sum(1 for L in run["layers"].values() for u in L["units"] if u["detector"])
        runs.append({
            "id": run["id"], "experiment": run["experiment"], "variant": run["variant"], "seed": run["seed"],
            "val_accuracy": run["val_accuracy"], "detectors": detectors,
            "registered": f"sanity{report.pk}-{run['id']}" in registered,
        })
    return runs


def crowd_vs_truth(report: SanityReport) -> list[dict]:
    """Per registered layer: how often the crowd's aggregated word names the true digit of gold units,
    next to the IoU label's rate (the results app's comparison)."""
    from units.dissection.models import Layer
    from units.results.selectors import layer_comparison

    rows = []
    layers = Layer.objects.filter(job__in=report.jobs.all()).select_related("job__network",
                                                                            "job__dataset").order_by("job_id", "id")
    for layer in layers:
        comparison = layer_comparison(layer)
        rows.append({
            "layer": layer, "run": layer.job.network.name, "gold_units": comparison.gold_units,
            "crowd_accuracy": comparison.crowd_accuracy, "iou_accuracy": comparison.iou_accuracy,
            "url": reverse("results:layer", kwargs={"layer_id": layer.pk}),
        })
    return rows
