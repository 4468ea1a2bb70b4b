"""Reads of the compute side for pages and the API (one place for the joins they need).

Every read that starts from an id or a list takes the user: rows are cut to the projects where
the user may do the capability asked (units.projects.access.scope), so a row of another project
reads as not existing.
"""
from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet

from units.projects.access import VIEW, object_for, scope

from .models import DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit, UnitConceptScore

# Sort keys of the layer report (NetDissect's report sorts by unit, label or score).
UNIT_SORTS = {
    "unit": ("index",),
    "label": ("iou_label", "index"),
    "category": ("iou_category", "-iou_score", "index"),
    "score": ("-iou_score", "index"),
}


def job_list(user, project=None) -> QuerySet[DissectionJob]:
    jobs = scope(DissectionJob.objects, user).select_related("network", "dataset", "created_by").annotate(
        num_layers=Count("layer_set", distinct=True)
    )
    return jobs.filter(project=project) if project is not None else jobs


def job_get(user, job_id: int, capability: str = VIEW) -> DissectionJob:
    return object_for(
        DissectionJob.objects.select_related("network", "dataset", "created_by"), user, job_id, capability
    )


def job_layers(job: DissectionJob) -> QuerySet[Layer]:
    return job.layer_set.annotate(
        interpretable=Count("units", filter=Q(units__iou_score__gt=0.04)),
        dead=Count("units", filter=Q(units__max_activation__lte=0)),
        published=Count("units__hits", filter=Q(units__hits__kind="label"), distinct=True),
    ).order_by("id")


def job_status(job: DissectionJob) -> dict:
    """What the progress bar polls: small, and read from the row (the truth), not the broker."""
    return {
        "id": job.pk,
        "status": job.status,
        "stage": job.stage,
        "progress": round(float(job.progress), 4),
        "error": job.error_message,
        "finished": job.status in (DissectionJob.Status.SUCCEEDED, DissectionJob.Status.FAILED),
    }


def layer_get(user, layer_id: int, capability: str = VIEW) -> Layer:
    return object_for(Layer.objects.select_related("job__network", "job__dataset"), user, layer_id, capability,
                      path="job__project")


def layer_units(layer: Layer, sort: str = "unit") -> QuerySet[Unit]:
    order = UNIT_SORTS.get(sort, UNIT_SORTS["unit"])
    return layer.units.order_by(*order)


def unit_get(user, unit_id: int) -> Unit:
    return object_for(Unit.objects.select_related("layer__job__network", "layer__job__dataset").prefetch_related(
        Prefetch("exemplars", queryset=Exemplar.objects.order_by("kind", "rank")),
        Prefetch("concept_scores", queryset=UnitConceptScore.objects.select_related("concept").order_by("rank")),
    ), user, unit_id, path="layer__job__project")


def unit_neighbours(unit: Unit) -> tuple[Unit | None, Unit | None]:
    siblings = Unit.objects.filter(layer_id=unit.layer_id)
    previous = siblings.filter(index__lt=unit.index).order_by("-index").first()
    following = siblings.filter(index__gt=unit.index).order_by("index").first()
    return previous, following


def networks(user, capability: str = VIEW, project=None) -> QuerySet[Network]:
    rows = scope(Network.objects, user, capability).annotate(num_jobs=Count("jobs"))
    return rows.filter(project=project) if project is not None else rows


def datasets(user, capability: str = VIEW, project=None) -> QuerySet[ProbeDataset]:
    rows = scope(ProbeDataset.objects, user, capability).annotate(num_concepts=Count("concepts"))
    return rows.filter(project=project) if project is not None else rows


def layers_for_publishing(user, capability: str, project=None) -> QuerySet[Layer]:
    layers = scope(Layer.objects, user, capability, path="job__project")
    if project is not None:
        layers = layers.filter(job__project=project)
    return (
        layers.filter(job__status=DissectionJob.Status.SUCCEEDED)
        .select_related("job__network", "job__dataset")
        .annotate(published=Count("units__hits", filter=Q(units__hits__kind="label"), distinct=True))
        .order_by("-job__created_at", "id")
    )
