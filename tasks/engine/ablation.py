"""Unit importance by ablation: accuracy lost, overall and per class, when one unit is zeroed.

A forward hook on the layer replaces its output. To avoid recomputing everything below
the layer once per unit, the hook hands the rest of the network G copies of the batch,
each with a different unit zeroed, so the layers before run once per batch and only the
layers after run on the G-fold batch. That needs a network whose later layers do not mix
the hooked output with earlier tensors of the original batch size (a residual add inside
the block, say); when the G-fold output fails or comes back with the wrong size, the
units are run one at a time instead.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from .errors import LayerError
from .models import default_device


def find_layer(model: nn.Module, name: str) -> nn.Module:
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        close = difflib.get_close_matches(name, [n for n in modules if n], n=5)
        raise LayerError(f"The model has no layer {name!r}" + (f"; did you mean {', '.join(close)}?" if close else "."))
    return modules[name]


def _batches(data: Any, targets: Any, batch_size: int) -> Iterable[tuple[torch.Tensor, torch.Tensor]]:
    """(images, class indices) from a tensor of images, or from a loader of Batches/tuples."""
    if isinstance(data, torch.Tensor):
        if targets is None:
            raise ValueError("ablation_effect needs targets when data is a tensor of images.")
        y = torch.as_tensor(np.asarray(targets), dtype=torch.long)
        for s in range(0, len(data), batch_size):
            yield data[s : s + batch_size], y[s : s + batch_size]
        return
    lookup = None if targets is None else torch.as_tensor(np.asarray(targets), dtype=torch.long)
    for batch in data:
        if isinstance(batch, (tuple, list)):
            x, y = batch[0], torch.as_tensor(batch[1])
        else:  # datasets.Batch: targets per dataset index when given, else the batch's own
            x, y = batch.images, (lookup[batch.indices] if lookup is not None else batch.targets)
        yield x, y


@dataclass(frozen=True)
class AblationBatching:
    """How the work is batched: images per batch (tensor data) and units zeroed per pass (default: ~2048 rows)."""

    batch_size: int = 128
    units_per_pass: int | None = None


@torch.no_grad()
def ablation_effect(
    model: nn.Module,
    layer: str,
    data: Any,
    *,
    targets: Any = None,
    device: str | torch.device | None = None,
    num_classes: int | None = None,
    batching: AblationBatching | None = None,
    progress: Callable[[float], None] | None = None,
) -> dict:
    """Accuracy of `model` with each unit (channel, dim 1) of `layer` zeroed in turn.

    data: a tensor of (normalised) images with `targets`, or an iterable of
    `datasets.Batch` (targets from the batches, or `targets` indexed by dataset index)
    or of (images, targets) pairs. The device defaults to CUDA when present.
    Returns numpy values: baseline_acc, per_unit_acc [U],
    per_unit_drop [U] (= baseline - ablated accuracy), per_class_baseline [K],
    per_unit_class_drop [U, K] (NaN for classes with no image), class_counts [K],
    n_images, layer.
    """
    batching = batching or AblationBatching()
    batch_size, units_per_pass = batching.batch_size, batching.units_per_pass
    module = find_layer(model, layer)
    device = device or default_device()
    model.eval().to(device)
    zeroed: list[int] | None = None  # units to zero, one per copy of the batch; None = no ablation

    def hook(_: nn.Module, __: Any, out: torch.Tensor) -> torch.Tensor | None:
        if zeroed is None:
            return None
        b = out.shape[0]
        copies = out.repeat(len(zeroed), *([1] * (out.dim() - 1)))
        for g, unit in enumerate(zeroed):
            copies[g * b : (g + 1) * b, unit] = 0
        return copies

    handle = module.register_forward_hook(hook)
    try:
        baseline_hits: list[torch.Tensor] = []
        ablated_hits: list[torch.Tensor] = []  # [U, B] per batch
        labels: list[torch.Tensor] = []
        num_units = None
        grouped = True
        if isinstance(data, torch.Tensor):
            total = -(-len(data) // batch_size)
        else:
            total = len(data) if hasattr(data, "__len__") else 0
        for step, (x, y) in enumerate(_batches(data, targets, batch_size)):
            x, y = x.to(device), y.to(device)
            zeroed = None
            captured: list[torch.Tensor] = []
            probe = module.register_forward_hook(lambda m, i, o, captured=captured: captured.append(o))
            try:
                logits = model(x)
            finally:
                probe.remove()
            if num_units is None:
                num_units = captured[0].shape[1]
                group = units_per_pass or max(1, 2048 // max(1, len(x)))
            b = len(x)
            rows = []
            unit = 0
            while unit < num_units:
                size = min(group if grouped else 1, num_units - unit)
                zeroed = list(range(unit, unit + size))
                try:
                    out = model(x)
                    ok = out.shape[0] == size * b
                except RuntimeError:
                    ok = False
                if not ok and size > 1:
                    grouped = False  # this network mixes the layer with earlier tensors: go unit by unit
                    continue
                if not ok:
                    raise LayerError(f"Zeroing units of layer {layer!r} changed the output's batch size; cannot ablate "
                                     f"it.")
                rows.append(out.argmax(1).view(size, b) == y.view(1, b))
                unit += size
            zeroed = None
            baseline_hits.append((logits.argmax(1) == y).cpu())
            ablated_hits.append(torch.cat(rows).cpu())
            labels.append(y.cpu())
            if progress and total:
                progress(min(1.0, (step + 1) / total))
    finally:
        zeroed = None
        handle.remove()

    if not labels:
        raise ValueError("ablation_effect got no images.")
    y_all = torch.cat(labels).numpy()
    base = torch.cat(baseline_hits).numpy().astype(np.float64)
    ablated = torch.cat(ablated_hits, dim=1).numpy().astype(np.float64)  # [U, N]
    k = max(int(y_all.max()) + 1, num_classes or 0)
    counts = np.bincount(y_all, minlength=k).astype(np.float64)
    onehot = np.zeros((len(y_all), k))
    onehot[np.arange(len(y_all)), y_all] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        class_base = (base @ onehot) / counts
        class_ablated = (ablated @ onehot) / counts[None]
    return {
        "layer": layer,
        "n_images": int(len(y_all)),
        "baseline_acc": float(base.mean()),
        "per_unit_acc": ablated.mean(axis=1),
        "per_unit_drop": base.mean() - ablated.mean(axis=1),
        "per_class_baseline": class_base,
        "per_unit_class_drop": class_base[None] - class_ablated,
        "class_counts": counts.astype(np.int64),
    }
