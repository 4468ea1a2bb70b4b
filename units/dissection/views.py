"""Requester pages: networks, datasets, dissection jobs (with a live progress bar), layer reports, units.

Views parse input, call one service and render; bad input comes back as a form error.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from annotate_site.paging import page_of
from annotate_site.roles import member_required
from units.projects.access import WORK
from units.projects.current import current_project

from . import selectors
from .forms import PAINT_GRID, DatasetForm, JobForm, NetworkForm, PaintForm
from .layer_picker import picker_context
from .models import DissectionJob, Layer, Network, Unit
from .models.dissection import INTERPRETABLE_IOU
from .paint import PaintRequest, paint_choices, paint_edit, paint_payload
from .services import (
    EDITABLE_STATUSES,
    DatasetSource,
    DissectionError,
    JobSettings,
    NetworkInput,
    dataset_register,
    job_create,
    job_delete,
    job_start,
    job_update,
    network_register,
)

T = TypeVar("T")


def _get_or_404(getter: Callable[..., T], request: HttpRequest, pk: int, *args: Any) -> T:
    try:
        return getter(request.user, pk, *args)
    except (DissectionJob.DoesNotExist, Layer.DoesNotExist, Unit.DoesNotExist):
        raise Http404("No such item.") from None


# -- networks and datasets ------------------------------------------------------------------------


def _no_project(request: HttpRequest) -> HttpResponse:
    messages.error(request, "Registering needs a project where you are owner or requester; create or join one first.")
    return redirect("projects:list")


@member_required
def network_list(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    return render(request, "dissection/network_list.html", {
        "networks": selectors.networks(request.user, project=project) if project else [], "project": project})


@member_required
def network_new(request: HttpRequest) -> HttpResponse:
    project = current_project(request, WORK)
    if project is None:
        return _no_project(request)
    form = NetworkForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        upload = data["checkpoint"]
        try:
            network = network_register(
                project=project, name=data["name"], architecture=data["architecture"], checkpoint=upload,
                checkpoint_size=upload.size if upload else None,
                inputs=NetworkInput(num_classes=data["num_classes"], class_names=data["class_names"] or (),
                                    mean=data["mean"] or (), std=data["std"] or (), input_size=data["input_size"]),
                description=data["description"], created_by=request.user,
            )
        except DissectionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Network {network.name} registered.")
            if network.kind == Network.Kind.CLASSIFIER:  # straight to its layers: the picker of the job page
                return redirect(f"{reverse('dissection:job_new')}?network={network.pk}")
            return redirect("dissection:network_list")
    # reverse() gives the unversioned alias of a shared API name; the page calls the current version.
    probe_url = "/api/v1/" + reverse("api-architecture-layers").removeprefix("/api/")
    return render(request, "dissection/form.html", {"form": form, "title": "Register a network", "multipart": True,
                                                    "architecture_layers": probe_url})


@member_required
def dataset_list(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    return render(request, "dissection/dataset_list.html", {
        "datasets": selectors.datasets(request.user, project=project) if project else [], "project": project})


@member_required
def dataset_new(request: HttpRequest) -> HttpResponse:
    project = current_project(request, WORK)
    if project is None:
        return _no_project(request)
    form = DatasetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        archive = data["archive"]
        try:
            dataset = dataset_register(
                project=project, name=data["name"], kind=data["kind"],
                source=DatasetSource(path=data["path"], archive=archive,
                                     archive_size=archive.size if archive else None),
                image_size=data["image_size"],
                description=data["description"], created_by=request.user,
            )
        except DissectionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                f"Dataset {dataset.name} registered: {dataset.num_images} images, {dataset.concepts.count()} concepts."
            )
            return redirect("dissection:dataset_list")
    return render(request, "dissection/form.html", {"form": form, "title": "Register a probe dataset",
                                                    "multipart": True})


# -- jobs -----------------------------------------------------------------------------------------


@member_required
def job_list(request: HttpRequest) -> HttpResponse:
    project = current_project(request)
    jobs = selectors.job_list(request.user, project)[:200] if project else []
    return render(request, "dissection/job_list.html", {"jobs": jobs, "project": project})


@member_required
def job_new(request: HttpRequest) -> HttpResponse:
    project = current_project(request, WORK)
    if project is None:
        return _no_project(request)
    initial = {"layers": "conv1, conv2, conv3"} | {
        k: v for k, v in request.GET.items() if k in ("network", "dataset", "layers", "token_grid")}
    networks, datasets = (
        selectors.networks(request.user, WORK, project),
        selectors.datasets(request.user, WORK, project),
    )
    form = JobForm(request.POST or None, initial=initial, networks=networks, datasets=datasets)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            job = job_create(
                network=data["network"], dataset=data["dataset"],
                options=JobSettings([data["layers"]], top_k=data["top_k"], quantile=data["quantile"],
                                    iou_rule=data["iou_rule"], batch_size=data["batch_size"], shards=data["shards"],
                                    samples=data["samples"], sample_seed=data["sample_seed"] or 0,
                                    token_grid=data["token_grid"]),
                created_by=request.user,
            )
            if data["start"]:
                job_start(job=job)
        except DissectionError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("dissection:job", job.pk)
    return render(
        request,
        "dissection/form.html",
        {
            "form": form,
            "title": "New dissection job",
            "picker": picker_context(request.POST or request.GET, networks=networks, datasets=datasets),
        },
    )


@member_required
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _get_or_404(selectors.job_get, request, job_id)
    return render(request, "dissection/job_detail.html", {
        "job": job, "layers": selectors.job_layers(job), "status": selectors.job_status(job),
        "live": job.status in (DissectionJob.Status.QUEUED, DissectionJob.Status.RUNNING),
        "editable": job.status in EDITABLE_STATUSES,
    })


@member_required
def job_edit(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _get_or_404(selectors.job_get, request, job_id, WORK)
    initial = {"network": job.network_id, "dataset": job.dataset_id, "layers": ", ".join(job.layers),
               "top_k": job.top_k, "quantile": job.quantile, "iou_rule": job.iou_rule,
               "batch_size": job.batch_size, "shards": job.shards, "token_grid": job.token_grid}
    form = JobForm(
        request.POST or None,
        initial=initial,
        networks=selectors.networks(request.user, WORK, job.project_id),
        datasets=selectors.datasets(request.user, WORK, job.project_id),
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            options = JobSettings([data["layers"]], top_k=data["top_k"], quantile=data["quantile"],
                                  iou_rule=data["iou_rule"], batch_size=data["batch_size"], shards=data["shards"],
                                  token_grid=data["token_grid"])
            job = job_update(job=job, network=data["network"], dataset=data["dataset"], options=options)
            if data["start"]:
                job_start(job=job)
        except DissectionError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Job {job.pk} saved{' and queued' if data['start'] else ''}.")
            return redirect("dissection:job", job.pk)
    return render(request, "dissection/form.html", {"form": form, "title": f"Edit job #{job.pk}"})


@member_required
@require_POST
def job_remove(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _get_or_404(selectors.job_get, request, job_id, WORK)
    try:
        job_delete(job=job)
    except DissectionError as exc:
        messages.error(request, str(exc))
        return redirect("dissection:job", job_id)
    messages.success(request, f"Job {job_id} deleted.")
    return redirect("dissection:job_list")


@member_required
@require_GET
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    try:
        job = selectors.job_get(request.user, job_id)
    except DissectionJob.DoesNotExist:
        return JsonResponse({"error": f"No job {job_id}."}, status=404)
    return JsonResponse(selectors.job_status(job))


@member_required
@require_POST
def job_run(request: HttpRequest, job_id: int) -> HttpResponse:
    job = _get_or_404(selectors.job_get, request, job_id, WORK)
    try:
        job_start(job=job)
    except DissectionError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Job {job.pk} queued.")
    return redirect("dissection:job", job.pk)


# -- layer report and units ---------------------------------------------------------------------


@member_required
def layer_report(request: HttpRequest, layer_id: int) -> HttpResponse:
    layer = _get_or_404(selectors.layer_get, request, layer_id)
    sort = request.GET.get("sort", "unit")
    if sort not in selectors.UNIT_SORTS:
        sort = "unit"
    page = page_of(request, selectors.layer_units(layer, sort))
    # A generator's unit IoU is measured against a segmenter's labels: it is shown with that segmenter's accuracy.
    segmenter = None
    if layer.job.kind == DissectionJob.Kind.GENERATOR:
        segmenter = {"name": layer.job.dataset.name, "scores": (layer.job.dataset.meta or {}).get("segmenter_scores")}
    return render(request, "dissection/layer_report.html", {
        "layer": layer, "units": page.object_list, "page": page, "sort": sort, "sorts": list(selectors.UNIT_SORTS),
        "segmenter": segmenter, "interpretable_iou": INTERPRETABLE_IOU,
    })


@member_required
def unit_detail(request: HttpRequest, unit_id: int) -> HttpResponse:
    unit = _get_or_404(selectors.unit_get, request, unit_id)
    previous, following = selectors.unit_neighbours(unit)
    exemplars = list(unit.exemplars.all())
    return render(request, "dissection/unit_detail.html", {
        "unit": unit, "previous": previous, "following": following,
        "top": [e for e in exemplars if e.kind == "top"], "sentinels": [e for e in exemplars if e.kind == "sentinel"],
        "scores": unit.concept_scores.all(),
    })


# -- paint (generator jobs) -------------------------------------------------------------------------


@member_required
def paint(request: HttpRequest, job_id: int) -> HttpResponse:
    """Pick a sample, units and a region; see the generated image before and after (GAN Dissection)."""
    job = _get_or_404(selectors.job_get, request, job_id)
    try:
        layers = paint_choices(job)
    except DissectionError as exc:
        messages.error(request, str(exc))
        return redirect("dissection:job", job.pk)
    form = PaintForm(request.POST or None, layers=[layer["name"] for layer in layers])
    result = None
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            result = paint_payload(paint_edit(job=job, request=PaintRequest(
                layer_name=data["layer"], seed=data["seed"], mode=data["mode"], units=data["units"],
                label=data["label"], label_source=data["label_source"], box=data["box"],
                grid=None if data["box"] else form.grid(),
            )))
        except DissectionError as exc:
            form.add_error(None, str(exc))
    painted = set(request.POST.getlist("cell"))
    grid = [[{"row": r, "col": c, "value": f"{r},{c}", "checked": f"{r},{c}" in painted} for c in range(PAINT_GRID)]
            for r in range(PAINT_GRID)]
    status = 400 if request.method == "POST" and result is None else 200
    return render(request, "dissection/paint.html", {
        "job": job, "form": form, "layers": layers, "result": result, "grid": grid,
    }, status=status)
