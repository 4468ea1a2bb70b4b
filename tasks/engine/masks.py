"""Unit masks ``bilinear_upsample(A[n, u]) > T[u]`` computed only where they can be true.

Upsampling every map of a layer to the segmentation size costs more than the forward
pass, yet the masks are nearly empty (the top 0.5% of values). Bilinear output is a
convex combination of its 4 neighbouring input cells, so an output pixel can exceed T
only inside a "tile" (the output pixels between the same 2x2 input cells) that has a
corner cell above T. Only those tiles are evaluated, with the same arithmetic as
PyTorch's CPU kernel (``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)``), so the masks are the ones REFERENCES §1 defines.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Elements evaluated at once: bounds memory whatever the number of active tiles.
_CHUNK_ELEMENTS = 1 << 22


@dataclass
class _Axis:
    """Source indices and weights of bilinear interpolation along one axis, grouped in bands."""

    index0: torch.Tensor  # [out] first source index
    index1: torch.Tensor  # [out] second source index (== index0 at the far edge)
    weight0: torch.Tensor  # [out] float32
    weight1: torch.Tensor
    band_rows: torch.Tensor  # [in, width] output positions whose index0 is that input (-1 pad)


def _axis(in_size: int, out_size: int, device) -> _Axis:
    # PyTorch: scale = in / out (float32); src = max(scale * (i + 0.5) - 0.5, 0);
    # i0 = min(floor(src), in - 1); lambda1 = clamp(src - i0, 0, 1); i1 = i0 + (i0 < in - 1).
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    i = torch.arange(out_size, dtype=torch.float32)
    src = (scale * (i + 0.5) - 0.5).clamp(min=0)
    index0 = src.long().clamp(max=in_size - 1)
    weight1 = (src - index0.float()).clamp(0, 1)
    weight0 = 1 - weight1
    index1 = index0 + (index0 < in_size - 1).long()
    counts = torch.bincount(index0, minlength=in_size)
    width = max(1, int(counts.max()))
    band_rows = torch.full((in_size, width), -1, dtype=torch.long)
    order = torch.argsort(index0, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(out_size) - starts[index0[order]]
    band_rows[index0[order], slot] = order
    return _Axis(*(t.to(device) for t in (index0, index1, weight0, weight1, band_rows)))


_AXES: dict[tuple[int, int, str], _Axis] = {}


def _cached_axis(in_size: int, out_size: int, device: torch.device) -> _Axis:
    key = (in_size, out_size, str(device))
    if key not in _AXES:
        _AXES[key] = _axis(in_size, out_size, device)
    return _AXES[key]


def _exact_values(up, close, acts, pair, rows, cols, size) -> None:
    """Overwrite ``up`` where ``close`` with interpolate()'s values for those maps."""
    t, r, c = close.nonzero(as_tuple=True)
    wanted = pair[t]
    pairs = torch.unique(wanted)
    B, U, h, w = acts.shape
    dense = F.interpolate(acts.reshape(B * U, 1, h, w)[pairs], size=size, mode="bilinear", align_corners=False)
    at = torch.searchsorted(pairs, wanted)
    up[t, r, c] = dense[at, 0, rows[t, r], cols[t, c]]


@dataclass
class SparseMasks:
    """Every true pixel of the masks of a batch, and each (image, unit) mask area."""

    image: torch.Tensor  # [M] row in the batch
    unit: torch.Tensor  # [M]
    pixel: torch.Tensor  # [M] y * sw + x at segmentation size
    area: torch.Tensor  # [B, U] long, |M[n, u]|


def sparse_masks(acts: torch.Tensor, thresholds: torch.Tensor, size: tuple[int, int]) -> SparseMasks:
    """Mask pixels of ``interpolate(acts, size, bilinear, align_corners=False) > T`` (strict)."""
    B, U, h, w = acts.shape
    sh, sw = size
    dev = acts.device
    acts = acts.float()
    T = thresholds.to(dev, torch.float32)
    ry, rx = _cached_axis(h, sh, dev), _cached_axis(w, sw, dev)
    # A cell may reach past T through rounding of the weights: a tiny margin keeps it in.
    hot = acts + acts.abs() * 1e-5 >= T[None, :, None, None]
    # Tile (b, c) uses input cells b, b+1 by c, c+1 (clamped at the edge): max-pool 2x2.
    hot = F.pad(hot.float(), (0, 1, 0, 1))
    tiles = F.max_pool2d(hot, kernel_size=2, stride=1) > 0
    tn, tu, tb, tc = tiles.nonzero(as_tuple=True)
    R, C = ry.band_rows.shape[1], rx.band_rows.shape[1]
    area = torch.zeros(B * U, dtype=torch.long, device=dev)
    found_n, found_u, found_p = [], [], []
    step = max(1, _CHUNK_ELEMENTS // (R * C))
    for s in range(0, len(tn), step):
        n, u, b, c = tn[s : s + step], tu[s : s + step], tb[s : s + step], tc[s : s + step]
        rows = ry.band_rows[b]  # [t, R] output rows of the tile (-1 pad)
        cols = rx.band_rows[c]  # [t, C]
        rv, cv = rows.clamp(min=0), cols.clamp(min=0)
        # Separable: mix columns on the tile's two input rows, then mix those rows.
        k0, k1 = ry.index0[rv[:, 0]], ry.index1[rv[:, 0]]  # [t] (same for every row of a band)
        l0, l1 = rx.index0[cv], rx.index1[cv]  # [t, C]
        plane = acts.reshape(B * U, h, w)[n * U + u]  # [t, h, w]
        top, bottom = plane[torch.arange(len(n), device=dev), k0], plane[torch.arange(len(n), device=dev), k1]  # [t, w]
        wx0, wx1 = rx.weight0[cv], rx.weight1[cv]  # [t, C]
        t0 = top.gather(1, l0) * wx0 + top.gather(1, l1) * wx1  # [t, C]
        t1 = bottom.gather(1, l0) * wx0 + bottom.gather(1, l1) * wx1
        wy0, wy1 = ry.weight0[rv][:, :, None], ry.weight1[rv][:, :, None]  # [t, R, 1]
        up = t0[:, None, :] * wy0 + t1[:, None, :] * wy1  # [t, R, C]
        inside = (rows >= 0)[:, :, None] & (cols >= 0)[:, None, :]
        Tt = T[u][:, None, None]
        diff = up - Tt
        # PyTorch's kernel may round differently (FMA, vector lanes): values within a few ulps
        # of T are taken from interpolate() itself, so the masks match it bit for bit.
        corner = torch.maximum(top.abs().amax(1), bottom.abs().amax(1))
        tol = (1e-5 * (corner + T[u].abs()) + 1e-30)[:, None, None]
        close = (diff.abs() <= tol) & inside
        if bool(close.any()):
            _exact_values(up, close, acts, n * U + u, rows, cols, (sh, sw))
            diff = up - Tt
        hit = (diff > 0) & inside
        t, r, cc = hit.nonzero(as_tuple=True)
        pair = n[t] * U + u[t]
        area.index_add_(0, pair, torch.ones_like(pair))
        found_n.append(n[t])
        found_u.append(u[t])
        found_p.append(rows[t, r] * sw + cols[t, cc])
    empty = torch.zeros(0, dtype=torch.long, device=dev)
    return SparseMasks(
        torch.cat(found_n) if found_n else empty,
        torch.cat(found_u) if found_u else empty,
        torch.cat(found_p) if found_p else empty,
        area.view(B, U),
    )


@functools.lru_cache(maxsize=32)
def _matrix(in_size: int, out_size: int) -> torch.Tensor:
    """[out, in] bilinear weights (align_corners=False), PyTorch's indices and weights."""
    ax = _cached_axis(in_size, out_size, torch.device("cpu"))
    m = torch.zeros(out_size, in_size)
    rows = torch.arange(out_size)
    m.index_put_((rows, ax.index0), ax.weight0, accumulate=True)
    m.index_put_((rows, ax.index1), ax.weight1, accumulate=True)
    return m


def upsample_for_pictures(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[k, h, w] -> [k, H, W] bilinear as two small matmuls: much faster than interpolate()
    for a handful of maps, equal to it up to float rounding (fine for pictures, not IoU)."""
    ry, rx = _matrix(maps.shape[1], size[0]), _matrix(maps.shape[2], size[1])
    return ry @ maps.float() @ rx.t()
