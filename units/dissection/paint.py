"""The paint page's edit: one generated image of a generator job, with chosen units removed or
inserted in a region, before and after (GAN Dissection's interactive editing).

A read, not a write: nothing is stored. Units are picked by number (as pages show them, from 1)
or by their IoU or crowd label ("the units that draw 7"); the region is a box in image pixels
or a coarse painted grid. The engine's `edit_image` does the work; bad input is a `DissectionError`
with a message for the user. The generator is loaded once per process, lazily (the first edit
pays for it, never an import), and edits of one generator take turns: the engine's edit hooks
the shared module for its two forward passes.
"""
from __future__ import annotations

import base64
import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.urls import reverse

from .errors import DissectionError
from .generators import generated_probe
from .models import DissectionJob, Layer, Network, Unit

MODES = ("remove", "insert")
LABEL_SOURCES = ("any", "iou", "crowd")
MAX_SEED = 10**9  # a sample index: z of sample i of the job's z stream
DEFAULT_LABEL_LIMIT = 20  # "units that draw 7": the best this many by IoU
GENERATOR_CACHE_SIZE = 4


@dataclass
class PaintResult:
    job: DissectionJob
    layer: Layer
    units: list[Unit]
    seed: int
    mode: str
    values: list[float] | None  # inserted activation per unit (None: remove)
    edit: object  # tasks.engine.gan.edit.EditResult

    def before_png(self) -> bytes:
        return self.edit.before_png()

    def after_png(self) -> bytes:
        return self.edit.after_png()


@functools.lru_cache(maxsize=GENERATOR_CACHE_SIZE)
def _load(network_id: int, architecture: str, checkpoint: str, modified: float) -> tuple[object, threading.Lock]:
    # Keyed on the file's path and mtime too: a checkpoint replaced on disk is loaded afresh.
    from tasks.engine.gan.models import load_generator

    return load_generator(architecture, checkpoint or None), threading.Lock()


def _key(network: Network) -> tuple[int, str, str, float]:
    checkpoint = network.checkpoint.path if network.checkpoint else ""
    return network.pk, network.architecture, checkpoint, Path(checkpoint).stat().st_mtime if checkpoint else 0.0


@functools.lru_cache(maxsize=4 * GENERATOR_CACHE_SIZE)
def _layer_facts(key: tuple, layer: str) -> tuple[tuple[int, int], np.ndarray]:
    """(image size, the engine's default insert value of every unit) of one generator layer.

    `default_insert_values` runs 64 samples; per unit it depends on that unit alone, so computing
    it once for all units and indexing gives the engine's numbers at the cost of one edit.
    Call under the generator's lock.
    """
    from tasks.engine.gan.edit import default_insert_values
    from tasks.engine.gan.intervene import layer_shape

    generator, _ = _load(*key)
    shape = layer_shape(generator, layer)
    return shape.image, default_insert_values(generator, layer, range(shape.units))


@contextlib.contextmanager
def _one_torch_thread() -> Iterator[None]:
    """One image through a small generator is too little work to share: on a busy host torch's
    default threads make an edit an order of magnitude slower than one thread does
    (`python -m benchmarks.paint_bench`)."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def paint_job(job: DissectionJob) -> DissectionJob:
    if job.kind != DissectionJob.Kind.GENERATOR:
        raise DissectionError(f"Job {job.pk} dissected a classifier; painting needs a generator job.")
    if job.status != DissectionJob.Status.SUCCEEDED:
        raise DissectionError(f"Job {job.pk} is {job.status}; paint once it has succeeded.")
    return job


def paint_units(*, layer: Layer, numbers: Sequence[int] = (), label: str = "", label_source: str = "any",
                limit: int = DEFAULT_LABEL_LIMIT) -> list[Unit]:
    """Units by number (from 1, as pages show them) plus the units whose label is `label`."""
    if label_source not in LABEL_SOURCES:
        raise DissectionError(f"label_source must be one of {', '.join(LABEL_SOURCES)}.")
    if int(limit) < 1:
        raise DissectionError("limit must be at least 1.")
    numbers = [int(n) for n in numbers]
    if len(set(numbers)) != len(numbers):
        raise DissectionError("A unit is named twice; name each unit once.")
    by_number = {u.index + 1: u for u in layer.units.filter(index__in=[n - 1 for n in numbers if n >= 1])}
    unknown = [n for n in numbers if n not in by_number]
    if unknown:
        raise DissectionError(f"Unknown unit(s) {', '.join(map(str, unknown))} in {layer.name}: "
                         f"its units are numbered 1 to {layer.num_units}.")
    chosen = [by_number[n] for n in numbers]
    label = (label or "").strip()
    if label:
        # The crowd's label through the reverse name the results app gives its aggregate,
        # so this app reads it without importing results.
        iou, crowd = Q(iou_label__iexact=label), Q(aggregate__crowd_word__iexact=label)
        match = {"iou": iou, "crowd": crowd, "any": iou | crowd}[label_source]
        labelled = list(layer.units.filter(match).exclude(pk__in=[u.pk for u in chosen])
                        .order_by("-iou_score", "index")[: int(limit)])
        if not labelled and not chosen:
            raise DissectionError(f"No unit of {layer.name} is labelled {label!r} ({label_source} labels); "
                             "pick units by number or another label.")
        chosen += labelled
    if not chosen:
        raise DissectionError("No unit selected: give unit numbers or a label.")
    return chosen


def grid_region(grid: Sequence[Sequence[int]], image: tuple[int, int]) -> np.ndarray:
    """bool [H, W] from a coarse painted grid whose cells tile the image exactly."""
    rows = [list(r) for r in grid]
    if not rows or not rows[0] or any(len(r) != len(rows[0]) for r in rows):
        raise DissectionError("The painted grid must be a non-empty rectangle of 0/1 cells.")
    cells = np.asarray(rows)
    if not np.isin(cells, (0, 1)).all():
        raise DissectionError("Painted grid cells are 0 (not painted) or 1 (painted).")
    (H, W), (h, w) = image, cells.shape
    if H % h or W % w:
        raise DissectionError(f"A {h}x{w} grid does not tile the {H}x{W} image; use a size that divides it (e.g. 8x8).")
    if not cells.any():
        raise DissectionError("The painted region is empty: paint at least one cell.")
    return cells.astype(bool).repeat(H // h, axis=0).repeat(W // w, axis=1)


def insert_values(job: DissectionJob, layer: Layer, units: list[Unit], label: str) -> list[float] | None:
    """GAN Dissection inserts the mean activation where the concept is present: the job's
    concept_means.npy column of `label` when it names a concept; else None (then the engine's
    default, its `default_insert_values`)."""
    names = [c.name.lower() for c in generated_probe(job.sample_seed).concepts]
    path = Path(settings.MEDIA_ROOT) / job.output_dir / layer.name / "concept_means.npy"
    if not label or label.strip().lower() not in names or not path.is_file():
        return None
    means = np.load(path)
    return [float(means[u.index, names.index(label.strip().lower())]) for u in units]


@dataclass(frozen=True)
class PaintRequest:
    """One edit the paint page or API asks for: which sample, which units (by number or by label), where."""

    layer_name: str
    seed: int
    mode: str = "remove"
    units: Sequence[int] = ()
    label: str = ""
    label_source: str = "any"
    limit: int = DEFAULT_LABEL_LIMIT
    box: Sequence[int] | None = None
    grid: Sequence[Sequence[int]] | None = None


def paint_edit(*, job: DissectionJob, request: PaintRequest) -> PaintResult:
    """Before/after of sample `request.seed` with the chosen units of its layer removed or inserted."""
    from tasks.engine.errors import EngineError
    from tasks.engine.gan.edit import Latent, edit_image

    layer_name, seed, mode, units = request.layer_name, request.seed, request.mode, request.units
    label, label_source, box, grid = request.label, request.label_source, request.box, request.grid

    paint_job(job)
    layer = job.layer_set.filter(name=layer_name).first()
    if layer is None:
        names = ", ".join(job.layer_set.order_by("id").values_list("name", flat=True))
        raise DissectionError(f"Job {job.pk} did not dissect a layer {layer_name!r}; choose one of {names}.")
    if mode not in MODES:
        raise DissectionError(f"mode must be remove or insert, not {mode!r}.")
    if not 0 <= int(seed) <= MAX_SEED:
        raise DissectionError(f"seed is a sample number between 0 and {MAX_SEED}.")
    if box is not None and grid is not None:
        raise DissectionError("Give the region as a box or as a painted grid, not both.")
    chosen = paint_units(layer=layer, numbers=units, label=label, label_source=label_source, limit=request.limit)
    values = insert_values(job, layer, chosen, label) if mode == "insert" else None
    try:
        key = _key(job.network)
    except OSError:
        raise DissectionError(f"The checkpoint of {job.network.name} is missing on the server; "
                         "register the generator again.") from None
    try:
        generator, lock = _load(*key)
        with lock, _one_torch_thread():
            image, defaults = _layer_facts(key, layer.name)
            if mode == "insert" and values is None:
                values = [float(defaults[u.index]) for u in chosen]
            region = None
            if grid is not None:
                region = grid_region(grid, image)
            elif box is not None:
                region = [int(v) for v in box]
            edit = edit_image(generator, layer=layer.name, units=[u.index for u in chosen], mode=mode,
                              latent=Latent(seed=int(seed), sample_seed=job.sample_seed), region=region,
                              values=values)
    except EngineError as exc:
        raise DissectionError(str(exc)) from None
    return PaintResult(job, layer, chosen, int(seed), mode, values, edit)


def _crowd_label(unit: Unit) -> str:
    return getattr(getattr(unit, "aggregate", None), "crowd_word", "") or ""


def _data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def paint_payload(result: PaintResult) -> dict:
    """The edit as the JSON endpoint and the page show it: pictures as PNG data URLs, units with links."""
    return {
        "job": result.job.pk, "layer": result.layer.name, "seed": result.seed, "mode": result.mode,
        "units": [{"id": u.pk, "number": u.index + 1, "iou_label": u.iou_label, "iou_score": u.iou_score,
                   "crowd_label": _crowd_label(u), "url": reverse("dissection:unit",
                                                                  args=[u.pk])} for u in result.units],
        "values": result.values, "before": _data_url(result.before_png()), "after": _data_url(result.after_png()),
        "seconds": round(result.edit.seconds, 4),
    }


def paint_choices(job: DissectionJob) -> list[dict]:
    """Per dissected layer: its units (number, labels, link) and the labels worth picking, for the page."""
    paint_job(job)
    layers = []
    for layer in job.layer_set.order_by("id"):
        units = list(layer.units.select_related("aggregate").order_by("index"))
        labels = sorted({u.iou_label for u in units if u.iou_label}
                        | {_crowd_label(u) for u in units if _crowd_label(u)},
                        key=lambda name: (not name.isdigit(), name))
        layers.append({"name": layer.name, "labels": labels, "units": [
            {"number": u.index + 1, "iou_label": u.iou_label, "iou_score": u.iou_score, "crowd_label": _crowd_label(u),
             "url": reverse("dissection:unit", args=[u.pk])} for u in units]})
    return layers
