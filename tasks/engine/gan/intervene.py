"""Interventions on generator units and their average causal effect (GAN Dissection §3.2).

An ``Intervention`` forces units of one layer to 0 (remove, "ablation") or to a value
(insert) over all positions or a region, through a forward hook, so it works on any
generator. Its effect on concept c is measured on the segmentations of the same z with and
without it, counted inside the area (the region at image resolution; the whole image
without one):

  remove: (c pixels before - c pixels after) / c pixels before     (fraction of c removed)
  insert: (c pixels after - c pixels before) / non-c pixels before  (fraction of the rest made c)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..capture import resolve_layers
from ..errors import EngineError
from .models import NUM_SEG_CLASSES, segment
from .samples import sample_z, z_dim_of

MODES = ("remove", "insert")


@dataclass
class Intervention:
    layer: str
    units: Sequence[int]  # 0-based
    mode: str = "remove"
    values: float | Sequence[float] | np.ndarray | None = None  # insert: one value, or one per unit
    region: np.ndarray | torch.Tensor | None = None  # bool [h, w] (feature) or [H, W] (image); None: all


@dataclass
class LayerShape:
    units: int
    feature: tuple[int, int]
    image: tuple[int, int]


@torch.no_grad()
def layer_shape(generator: nn.Module, layer: str) -> LayerShape:
    """Units and map size of ``layer`` and the image size, from one generated sample."""
    module = resolve_layers(generator, [layer])[layer]
    seen: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda m, i, o: seen.setdefault("out", o))
    try:
        image = generator.eval()(torch.zeros(1, z_dim_of(generator), device=_device(generator)))
    finally:
        handle.remove()
    out = seen.get("out")
    if not isinstance(out, torch.Tensor) or out.dim() != 4:
        raise EngineError(f"layer '{layer}' does not output [batch, units, height, width] maps; choose a conv stage")
    return LayerShape(int(out.shape[1]), (int(out.shape[-2]), int(out.shape[-1])),
                      (int(image.shape[-2]), int(image.shape[-1])))


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters(), torch.empty(0)).device


def feature_region(region, feature: tuple[int, int]) -> torch.Tensor:
    """bool [h, w]: a feature-size region as is; an image-size one marks every cell it touches."""
    if region is None:
        return torch.ones(feature, dtype=torch.bool)
    r = torch.as_tensor(np.asarray(region)).bool()
    if tuple(r.shape) == tuple(feature):
        return r
    # A painted stroke should reach the cells under it, however thin: max-pool ("any").
    return F.adaptive_max_pool2d(r.float()[None, None], feature)[0, 0] > 0


def image_area(region, shape: LayerShape) -> torch.Tensor:
    """bool [H, W] where effects are counted: the region at image resolution (or everything)."""
    if region is None:
        return torch.ones(shape.image, dtype=torch.bool)
    r = torch.as_tensor(np.asarray(region)).bool()
    if tuple(r.shape) == tuple(shape.image):
        return r
    return F.interpolate(r.float()[None, None], size=shape.image, mode="nearest")[0, 0] > 0


def check_intervention(iv: Intervention, shape: LayerShape) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate against the layer; returns (unit index tensor, value per unit)."""
    if iv.mode not in MODES:
        raise EngineError(f"unknown mode '{iv.mode}'; choose remove or insert")
    units = [int(u) for u in iv.units]
    if not units:
        raise EngineError("no unit selected: choose at least one unit of the layer")
    bad = [u for u in units if not 0 <= u < shape.units]
    if bad:
        raise EngineError(f"unknown unit(s) {bad} in layer '{iv.layer}': it has units 0..{shape.units - 1}")
    if len(set(units)) != len(units):
        raise EngineError(f"unit list {units} names a unit twice")
    if iv.region is not None:
        r = np.asarray(iv.region)
        if r.ndim != 2 or tuple(r.shape) not in (tuple(shape.feature), tuple(shape.image)):
            raise EngineError(f"region shaped {r.shape} fits neither the layer's maps {shape.feature} nor the image "
                              f"{shape.image}")
        if not r.astype(bool).any():
            raise EngineError("the region is empty: mark at least one pixel or feature cell")
    if iv.mode == "remove":
        values = torch.zeros(len(units))
    elif iv.values is None:
        raise EngineError("insert needs values: the units' mean activation where the concept is present "
                          "(concept_means.npy)")
    else:
        values = torch.as_tensor(np.asarray(iv.values, dtype=np.float32)).flatten()
        values = values.expand(len(units)).clone() if values.numel() == 1 else values
        if values.numel() != len(units):
            raise EngineError(f"insert got {values.numel()} values for {len(units)} units")
    return torch.tensor(units, dtype=torch.long), values


@contextlib.contextmanager
def intervening(generator: nn.Module, iv: Intervention, shape: LayerShape | None = None) -> Iterator[None]:
    """While active, every forward pass of ``generator`` applies ``iv`` at its layer."""
    shape = shape or layer_shape(generator, iv.layer)
    units, values = check_intervention(iv, shape)
    region = feature_region(iv.region, shape.feature)

    def hook(module: nn.Module, inputs, out: torch.Tensor) -> torch.Tensor:
        out = out.clone()
        sel = out[:, units.to(out.device)]
        forced = values.to(out.device, out.dtype)[None, :, None, None].expand_as(sel)
        out[:, units.to(out.device)] = torch.where(region.to(out.device), forced, sel)
        return out

    handle = resolve_layers(generator, [iv.layer])[iv.layer].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@dataclass
class Baseline:
    """Unedited samples: their z and segmentation (uint8 [N, H, W] label numbers)."""

    z: torch.Tensor
    labels: torch.Tensor
    seed: int = 0


@torch.no_grad()
def make_baseline(generator: nn.Module, segmenter: nn.Module, *, n: int = 1000, seed: int = 0,
                  batch_size: int = 100) -> Baseline:
    z = sample_z(range(n), z_dim_of(generator), seed)
    generator.eval()
    labels = [segment(segmenter, generator(z[s : s + batch_size].to(_device(generator)))).cpu().to(torch.uint8)
              for s in range(0, n, batch_size)]
    return Baseline(z, torch.cat(labels), seed)


@dataclass
class CausalEffect:
    before: np.ndarray  # int [11] pixels per label inside the area, unedited
    after: np.ndarray  # int [11] the same with the intervention
    area: int  # pixels in the area, over all images
    n_images: int
    mode: str
    # int [N, 11] per image: pixels per label inside the area, unedited and edited (sum over N = before/after)
    before_per_image: np.ndarray | None = None
    after_per_image: np.ndarray | None = None
    effect: np.ndarray = field(init=False)  # float [11] per label number (NaN where undefined)

    def __post_init__(self) -> None:
        b, a = self.before.astype(np.float64), self.after.astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.mode == "remove":
                self.effect = np.where(b > 0, (b - a) / b, np.nan)
            else:
                rest = self.area - b
                self.effect = np.where(rest > 0, (a - b) / rest, np.nan)

    def of(self, number: int) -> float | None:
        v = float(self.effect[number])
        return None if np.isnan(v) else v


@torch.no_grad()
def causal_effect(generator: nn.Module, segmenter: nn.Module, iv: Intervention, base: Baseline, *,
                  batch_size: int = 100, shape: LayerShape | None = None) -> CausalEffect:
    """Average causal effect of ``iv`` over the baseline's images, for every label at once."""
    shape = shape or layer_shape(generator, iv.layer)
    area = image_area(iv.region, shape)
    before = label_counts(base.labels, area)
    after = []
    generator.eval()
    with intervening(generator, iv, shape):
        for s in range(0, len(base.z), batch_size):
            lab = segment(segmenter, generator(base.z[s : s + batch_size].to(_device(generator)))).cpu()
            after.append(label_counts(lab, area))
    after_all = torch.cat(after) if after else torch.zeros_like(before)
    return CausalEffect(before.sum(0).numpy(), after_all.sum(0).numpy(), int(area.sum()) * len(base.z),
                        len(base.z), iv.mode, before.numpy(), after_all.numpy())


def label_counts(labels: torch.Tensor, area: torch.Tensor) -> torch.Tensor:
    """long [N, 11]: pixels of each label number inside ``area`` (bool [H, W]) of each label map [N, H, W]."""
    inside = labels[:, area].long()
    return torch.zeros(len(labels), NUM_SEG_CLASSES, dtype=torch.long).scatter_add_(1, inside, torch.ones_like(inside))


def rank_units(generator: nn.Module, segmenter: nn.Module, layer: str, base: Baseline, *,
               batch_size: int = 100, progress_bar: bool = False) -> np.ndarray:
    """float [U, 11]: the fraction of each label's pixels removed when unit u alone is zeroed."""
    from tqdm import tqdm

    shape = layer_shape(generator, layer)
    out = np.full((shape.units, NUM_SEG_CLASSES), np.nan)
    for u in tqdm(range(shape.units), desc=f"rank {layer}", unit="unit", disable=not progress_bar, leave=False):
        out[u] = causal_effect(generator, segmenter, Intervention(layer, [u]), base, batch_size=batch_size,
                               shape=shape).effect
    return out


def top_units(ranking: np.ndarray, number: int, k: int) -> list[int]:
    """The k units with the largest effect on label ``number`` (ties -> lower unit)."""
    col = np.nan_to_num(ranking[:, number], nan=-np.inf)
    return [int(u) for u in np.lexsort((np.arange(len(col)), -col))[:k]]

