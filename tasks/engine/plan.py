"""Before a sweep: how big each layer's feature maps are, and whether to spill or recompute them.

A whole run needs every layer's maps twice: once for top images and thresholds, then for the
IoU counts under those thresholds. Spilling them to disk costs ``N * U * h * w * 4`` bytes
(about 6 GB for resnet18 layer4 on full Broden, 50 GB for layer1); a second forward pass
over the images costs time instead (davidbau/dissect's way). The planner probes each layer's
map shape with one forward pass of a blank image per image size (on the meta device when the
model allows: shapes without arithmetic), then spills a layer only
when its maps fit the disk budget; the rest are recomputed. It also bounds the memory the
running statistics will hold, and refuses a plan that cannot fit before any image is read.
"""

from __future__ import annotations

import csv
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.func import functional_call

from .capture import LayerCapture
from .datasets import ProbeDataset
from .errors import EngineError, LayerError
from .runningstats import RadixQuantile, RunningQuantile

SPILL_MODES = ("auto", "always", "never")
THRESHOLD_METHODS = ("auto", "exact", "radix")  # auto: exact one-sweep top-m while it fits memory
# auto: a layer whose exact state would pass this takes a radix threshold (one more sweep over it)
# even within the memory budget, when radix holds less (1.5 MB a unit: layers of few units and large
# maps). A dissection's process is 1.0-1.25 GB without statistics (torch, model, batch-32
# activations, loader): resnet18 layer1 on full Broden plans 372 MB exact (about 1.5 GB peak) or
# 101 MB radix (1.28 GB measured; a radix state does not grow with the images).
EXACT_STATE_LIMIT = 256_000_000
_NPY_HEADER = 128  # bytes np.lib.format writes before the array


@dataclass
class LayerPlan:
    layer: str
    units: int
    map_shapes: list[tuple[int, int]]  # (h, w) per image size group, in group order
    values_per_image: int  # largest h * w
    spill_bytes_float32: int
    spill_bytes_float16: int
    exact_quantile_bytes: int  # peak memory of the running top-m quantile (0 with given thresholds)
    counts_bytes: int  # IoU count arrays
    method: str = "recompute"  # "spill" or "recompute"
    dtype: str = "float32"  # spill dtype
    # "exact": running top-m (one sweep); "radix": RadixQuantile, bounded memory, one more
    # sweep over this layer; "given": thresholds passed in.
    threshold: str = "exact"
    reading: str = ""  # how the layer's output is read as maps (capture.read_map)

    @property
    def quantile_bytes(self) -> int:
        if self.threshold == "given":
            return 0
        return RadixQuantile.memory_bytes(self.units) if self.threshold == "radix" else self.exact_quantile_bytes

    @property
    def spill_bytes(self) -> int:
        if self.method != "spill":
            return 0
        return self.spill_bytes_float16 if self.dtype == "float16" else self.spill_bytes_float32


@dataclass
class DissectPlan:
    images: int
    batches: int
    layers: list[LayerPlan]
    disk_budget: int
    memory_budget: int
    labels_bytes: int  # label spill (only when every layer spills: no second pass loads them)
    passes: int = 1
    notes: list[str] = field(default_factory=list)

    @property
    def spilled(self) -> list[str]:
        return [lp.layer for lp in self.layers if lp.method == "spill"]

    @property
    def recomputed(self) -> list[str]:
        return [lp.layer for lp in self.layers if lp.method == "recompute"]

    @property
    def spills_labels(self) -> bool:
        return bool(self.layers) and not self.recomputed

    @property
    def disk_bytes(self) -> int:
        return sum(lp.spill_bytes for lp in self.layers) + (self.labels_bytes if self.spills_labels else 0)

    @property
    def memory_bytes(self) -> int:
        return sum(lp.quantile_bytes + lp.counts_bytes for lp in self.layers)

    def layer(self, name: str) -> LayerPlan:
        return next(lp for lp in self.layers if lp.layer == name)

    def lines(self) -> list[str]:
        out = [
            f"plan: {self.images} images in {self.batches} batches, {self.passes} forward pass(es); "
            f"disk {_size(self.disk_bytes)} of {_size(self.disk_budget)} budget, "
            f"running statistics {_size(self.memory_bytes)} of {_size(self.memory_budget)}"
        ]
        for lp in self.layers:
            shapes = ", ".join(f"{h}x{w}" for h, w in lp.map_shapes)
            how = f"spill {lp.dtype} {_size(lp.spill_bytes)}" if lp.method == "spill" else (
                f"recompute (a spill would take {_size(lp.spill_bytes_float32)})"
            )
            out.append(f"  {lp.layer}: {lp.units} units at {shapes} -> {how}; {lp.threshold} threshold, state "
                       f"{_size(lp.quantile_bytes)}")
        if self.spills_labels:
            out.append(f"  labels spilled for the counting pass: {_size(self.labels_bytes)}")
        out += [f"  note: {n}" for n in self.notes]
        return out

    def to_json(self) -> dict:
        data = asdict(self)
        data.update(
            disk_bytes=self.disk_bytes, memory_bytes=self.memory_bytes, spilled=self.spilled,
            recomputed=self.recomputed, spills_labels=self.spills_labels,
        )
        for entry, lp in zip(data["layers"], self.layers):
            entry["spill_bytes"] = lp.spill_bytes
            entry["quantile_bytes"] = lp.quantile_bytes
            entry["map_shapes"] = [list(s) for s in lp.map_shapes]
        return data


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def parse_size(text: str | int) -> int:
    """'2GB', '500MB', '1.5G', '0' or a plain byte count -> bytes (decimal units)."""
    if isinstance(text, int):
        return text
    t = str(text).strip().upper().removesuffix("B")
    scale = {"K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}.get(t[-1:], 1)
    try:
        value = float(t[:-1] if scale != 1 else t)
    except ValueError:
        raise EngineError(f"cannot read the size '{text}'; write e.g. 2GB, 500MB or a byte count") from None
    return int(value * scale)


def probe_shapes(model: nn.Module, layers: list[str], image_sizes: list[tuple[int, int]], device,
                 readings: dict[str, str] | None = None, grid: tuple[int, int] | None = None
                 ) -> dict[str, list[tuple[int, int, int]]]:
    """(units, h, w) of each layer for each image size, from one blank image per size.

    ``readings`` (when given) receives how each layer's output is read as maps; ``grid`` is the
    stated grid of token layers.

    First on PyTorch's meta device (shapes only: no arithmetic, no weights copied, and no
    first-call cost of a new input shape, ~1 s for resnet18 on the CPU); a model that cannot
    run there is probed by a real forward pass on ``device``.
    """
    model.eval()
    try:
        meta = {k: torch.empty_like(v, device="meta") for k, v in (*model.named_parameters(), *model.named_buffers())}
        return _probe(model, layers, image_sizes, "meta", meta, readings, grid)
    except LayerError:
        raise
    except Exception:  # an op without a meta kernel, data-dependent control flow, ...
        model.to(device)
        return _probe(model, layers, image_sizes, device, None, readings, grid)


def _probe(
    model, layers, image_sizes, device, meta: dict | None, readings: dict | None, grid: tuple[int, int] | None
) -> dict[str, list[tuple[int, int, int]]]:
    out: dict[str, list[tuple[int, int, int]]] = {name: [] for name in layers}
    with LayerCapture(model, layers, grid=grid) as capture, torch.inference_mode():
        for ih, iw in image_sizes:
            x = torch.zeros(1, 3, ih, iw, device=device)
            if meta is None:
                outputs = capture.run(x)
            else:
                outputs = capture.run_with(lambda x=x: functional_call(model, meta, (x,)))
            for name in layers:
                _, u, h, w = outputs[name].shape
                out[name].append((int(u), int(h), int(w)))
        if readings is not None:
            readings.update(capture.readings)
    return out


def labels_spill_bytes(dataset: ProbeDataset, batches: list[list[int]]) -> int:
    """Bytes of the label records of a full spill: int16 [B, L, sh, sw] + image labels per batch."""
    total = 0
    for batch in batches:
        layers, numbers = 0, 0
        for i in batch:
            n_pix, n_img = dataset.label_counts(i)
            layers, numbers = max(layers, n_pix), max(numbers, n_img)
        sh, sw = dataset.size_key(batch[0])[-2:] if dataset.has_pixel_labels else (0, 0)
        pixel = len(batch) * layers * sh * sw * 2 if layers else 0
        total += _NPY_HEADER + pixel + _NPY_HEADER + len(batch) * numbers * 8
    return total


@dataclass(frozen=True)
class PlanRequest:
    """What the planner must fit: the layers and their statistics, within the disk and memory budgets."""

    layers: list[str]
    quantile: float
    fixed_thresholds: set[str]  # layers whose thresholds are given (no quantile state to hold)
    disk_budget: int
    memory_budget: int
    spill: str = "auto"
    allow_float16: bool = False
    threshold: str = "auto"
    grid: tuple[int, int] | None = None  # the stated grid of token layers (capture.read_map)


def make_plan(
    model: nn.Module,
    dataset: ProbeDataset,
    batches: list[list[int]],
    request: PlanRequest,
    *,
    device="cpu",
    labelled: bool = True,
) -> DissectPlan:
    """Choose spill or recompute per layer; raise EngineError when no plan fits the budgets."""
    layers, quantile, fixed_thresholds = request.layers, request.quantile, request.fixed_thresholds
    disk_budget, memory_budget, spill = request.disk_budget, request.memory_budget, request.spill
    allow_float16, threshold = request.allow_float16, request.threshold
    if spill not in SPILL_MODES:
        raise EngineError(f"unknown spill mode '{spill}'; choose one of {', '.join(SPILL_MODES)}")
    if threshold not in THRESHOLD_METHODS:
        raise EngineError(f"unknown threshold method '{threshold}'; choose one of {', '.join(THRESHOLD_METHODS)}")
    groups: dict[tuple, int] = {}
    image_size: dict[tuple, tuple[int, int]] = {}
    for batch in batches:
        key = dataset.size_key(batch[0])
        groups[key] = groups.get(key, 0) + len(batch)
        image_size[key] = _image_size(dataset, batch[0])
    keys = list(groups)
    readings: dict[str, str] = {}
    shapes = probe_shapes(model, layers, [image_size[k] for k in keys], device, readings, request.grid)
    n_images = sum(groups.values())
    n_labels = int(max((c.number for c in dataset.concepts), default=0)) + 1 if labelled else 0
    plans = []
    largest_batch = max((len(b) for b in batches), default=0)
    for name in layers:
        units = shapes[name][0][0]
        per_image = [h * w for _, h, w in shapes[name]]
        values = sum(groups[k] * units * hw for k, hw in zip(keys, per_image))
        vpi = max(per_image)
        cap = math.ceil(quantile * n_images * vpi) + 2
        q_bytes = 0 if name in fixed_thresholds else RunningQuantile.memory_bytes(units, cap, largest_batch * vpi)
        plans.append(LayerPlan(
            name, units, [(h, w) for _, h, w in shapes[name]], vpi,
            values * 4 + _NPY_HEADER * len(keys), values * 2 + _NPY_HEADER * len(keys), q_bytes,
            units * n_labels * 8 * 2, threshold="given" if name in fixed_thresholds else "exact",
            reading=readings.get(name, ""),
        ))
    plan = DissectPlan(n_images, len(batches), plans, disk_budget, memory_budget,
                       labels_spill_bytes(dataset, batches) if labelled else 0)
    _choose(plan, spill, allow_float16)
    # Thresholds: the one-sweep running top-m while it fits (and stays under EXACT_STATE_LIMIT for
    # the layer); else, largest first, the radix quantile (bounded memory, one more sweep over that layer).
    for lp in sorted(plan.layers, key=lambda lp: -lp.exact_quantile_bytes):
        if threshold == "radix" and lp.threshold == "exact":
            lp.threshold = "radix"
        if threshold != "auto":
            continue
        if plan.memory_bytes <= memory_budget and lp.exact_quantile_bytes <= EXACT_STATE_LIMIT:
            continue
        if lp.threshold == "exact" and RadixQuantile.memory_bytes(lp.units) < lp.exact_quantile_bytes:
            lp.threshold = "radix"
            plan.notes.append(
                f"{lp.layer}: an exact one-sweep threshold would hold {_size(lp.exact_quantile_bytes)}; "
                f"a radix threshold holds {_size(lp.quantile_bytes)} and sweeps the layer once more"
            )
    radix_recomputed = any(lp.threshold == "radix" and lp.method == "recompute" for lp in plan.layers)
    plan.passes = 1 + bool(plan.recomputed) + radix_recomputed
    if not labelled and plan.recomputed:
        plan.notes.append("unlabelled data: recomputed layers forward only their top images again")
    if plan.memory_bytes > memory_budget:
        worst = max(plan.layers, key=lambda lp: lp.quantile_bytes + lp.counts_bytes)
        raise EngineError(
            f"no plan fits a memory budget of {_size(memory_budget)}: the running statistics need at least "
            f"{_size(plan.memory_bytes)} ({worst.layer}: threshold state {_size(worst.quantile_bytes)}, IoU counts "
            f"{_size(worst.counts_bytes)}). Raise memory_budget (--memory-budget), dissect fewer layers at once, "
            "or give thresholds from an earlier run (--thresholds)"
        )
    return plan


def _image_size(dataset: ProbeDataset, index: int) -> tuple[int, int]:
    key = dataset.size_key(index)
    return (int(key[0]), int(key[1]))


def _choose(plan: DissectPlan, spill: str, allow_float16: bool) -> None:
    budget = plan.disk_budget
    if spill == "never":
        return
    if spill == "always":
        for lp in plan.layers:
            lp.method, lp.dtype = "spill", "float16" if allow_float16 else "float32"
        if plan.disk_bytes > budget:
            raise EngineError(
                f"spilling every layer needs {_size(plan.disk_bytes)} of disk but the budget is {_size(budget)}; "
                "raise disk_budget (--disk-budget) or let the planner recompute layers (--spill auto)"
            )
        return
    # Smallest layers first: the most layers spilled for the disk.
    left = budget
    for lp in sorted(plan.layers, key=lambda lp: lp.spill_bytes_float32):
        if lp.spill_bytes_float32 <= left:
            lp.method, lp.dtype = "spill", "float32"
        elif allow_float16 and lp.spill_bytes_float16 <= left:
            lp.method, lp.dtype = "spill", "float16"
        else:
            continue
        left -= lp.spill_bytes
    if plan.spills_labels and plan.disk_bytes > budget:
        # Labels are spilled only when no layer is recomputed; recomputing the largest layer
        # instead lets the second pass read labels from the images' files.
        biggest = max(plan.layers, key=lambda lp: lp.spill_bytes)
        biggest.method = "recompute"
        plan.notes.append(f"{biggest.layer} recomputed so the labels need not be spilled")


def write_sized_index(root: Path, n_images: int, size: int = 224, seg_size: int | None = None) -> Path:
    """A Broden-format index of ``n_images`` rows that all point at one image and one label
    map: what the planner needs (sizes, label layers) at any dataset size, in a second."""
    seg_size = seg_size or size // 2
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((size, size, 3), np.uint8)).save(root / "images" / "a.jpg")
    Image.fromarray(np.full((seg_size, seg_size, 3), (1, 0, 0), np.uint8)).save(root / "images" / "a_object.png")
    _write_csv(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", "object"],
           [["a.jpg", "train", size, size, seg_size, seg_size, "a_object.png"]] * n_images)
    _write_csv(root / "category.csv", ["name", "first", "last", "count", "frequency"], [["object", 1, 1, 1, 1]])
    _write_csv(root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
           [[1, "thing", "object(1)", 1, 1.0, ""]])
    _write_csv(root / "c_object.csv", ["code", "number", "name", "frequency", "coverage"], [[1, 1, "thing", 1, 1.0]])
    return root


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
