"""One-image edit for a web "paint" page: remove or insert units in a region, before/after.

Two forward passes of one z (plus one to learn the layer's shape), so it stays far under
a second on the CPU for the demo generator. Bad input raises ``EngineError`` with a
message a page can show as is.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..errors import EngineError
from .intervene import Intervention, LayerShape, intervening, layer_shape
from .models import to_uint8_rgb
from .samples import sample_z, z_dim_of

Box = tuple[int, int, int, int]  # (top, left, bottom, right) in image pixels, bottom/right exclusive
# The edit is a forward hook on the shared generator: two threads editing at once would
# each see the other's hook, so edits take turns (a few ms each).
_HOOK_LOCK = threading.Lock()


@dataclass
class EditResult:
    before: np.ndarray  # uint8 [H, W, 3]
    after: np.ndarray
    layer: str
    units: list[int]
    mode: str
    region: np.ndarray  # bool mask actually used, at the resolution it was given
    seconds: float

    def before_png(self) -> bytes:
        return _png(self.before)

    def after_png(self) -> bytes:
        return _png(self.after)


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def box_region(box: Sequence[int], shape: LayerShape) -> np.ndarray:
    """bool [H, W] of an image-pixel box; EngineError when it is not inside the image."""
    if len(box) != 4:
        raise EngineError(f"a region box is (top, left, bottom, right) in image pixels, got {tuple(box)}")
    top, left, bottom, right = (int(v) for v in box)
    H, W = shape.image
    if not (0 <= top < bottom <= H and 0 <= left < right <= W):
        raise EngineError(f"region ({top}, {left}, {bottom}, {right}) is outside the {H}x{W} image or empty; "
                          f"use 0 <= top < bottom <= {H} and 0 <= left < right <= {W}")
    mask = np.zeros((H, W), dtype=bool)
    mask[top:bottom, left:right] = True
    return mask


@torch.no_grad()
def default_insert_values(generator: nn.Module, layer: str, units: Sequence[int], *, n: int = 64) -> np.ndarray:
    """A "high" value per unit when none is given: its 0.99 quantile over n random samples.

    The paper inserts the mean activation where the concept is present; dissection writes
    that as concept_means.npy, which callers should pass as ``values`` when they have it.
    """
    from ..capture import LayerCapture

    z = sample_z(range(n), z_dim_of(generator), seed=12345)
    with LayerCapture(generator.eval(), [layer]) as capture:
        acts = capture.run(z)[layer][:, list(units)]
    return torch.quantile(acts.transpose(0, 1).reshape(len(units), -1), 0.99, dim=1).numpy()


@dataclass(frozen=True)
class Latent:
    """Which z to draw: an explicit ``z``, or ``seed`` = sample index of a dissection run's z stream ``sample_seed``."""

    z: np.ndarray | torch.Tensor | None = None
    seed: int | None = None
    sample_seed: int = 0


@torch.no_grad()
def edit_image(
    generator: nn.Module,
    *,
    layer: str,
    units: Sequence[int],
    latent: Latent,
    mode: str = "remove",
    region: np.ndarray | Sequence[int] | None = None,
    values: float | Sequence[float] | np.ndarray | None = None,
) -> EditResult:
    """Before/after pictures of one generated image with ``units`` of ``layer`` removed or inserted.

    latent.z: [z_dim] (or [1, z_dim]); or latent.seed = a sample index: the z of sample ``seed`` of a
    dissection run with ``latent.sample_seed`` (see samples.sample_z). region: None (everywhere),
    a bool mask at the layer's feature size or at image size, or a box (top, left, bottom,
    right) in image pixels. values (insert only): one per unit or one for all; default
    ``default_insert_values``.
    """
    started = time.perf_counter()
    z, seed, sample_seed = latent.z, latent.seed, latent.sample_seed
    if (z is None) == (seed is None):
        raise EngineError("give exactly one of z or seed")
    z_dim = z_dim_of(generator)
    if seed is not None:
        if int(seed) < 0:
            raise EngineError(f"seed must be a sample index >= 0, got {seed}")
        zt = sample_z([int(seed)], z_dim, sample_seed)
    else:
        zt = torch.as_tensor(np.asarray(z, dtype=np.float32)).reshape(1, -1)
        if zt.shape[1] != z_dim:
            raise EngineError(f"z has {zt.shape[1]} values but the generator takes z_dim={z_dim}")
    generator.eval()
    shape = layer_shape(generator, layer)
    units = [int(u) for u in units]
    if region is not None and not isinstance(region, (np.ndarray, torch.Tensor)):
        nested = len(region) > 0 and isinstance(region[0], (list, tuple))  # a mask from JSON: rows of booleans
        region = np.asarray(region, dtype=bool) if nested else box_region(region, shape)
    if mode == "insert" and values is None and units and all(0 <= u < shape.units for u in units):
        values = default_insert_values(generator, layer, units)
    iv = Intervention(layer, units, mode, values=values, region=region)
    device = next(generator.parameters(), torch.empty(0)).device
    zt = zt.to(device)
    with _HOOK_LOCK:
        with intervening(generator, iv, shape):  # validates units, mode, region and values
            after = generator(zt)
        before = generator(zt)
    used = np.ones(shape.image, dtype=bool) if region is None else np.asarray(region, dtype=bool)
    return EditResult(to_uint8_rgb(before)[0].numpy(), to_uint8_rgb(after)[0].numpy(), layer, units, mode, used,
                      time.perf_counter() - started)
