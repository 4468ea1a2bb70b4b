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
    """Bilinear interpolation along one axis, its output split into pieces.

    A piece is a run of outputs sharing the same first source index (its "band"), at
    most ``ceil(out / in)`` long; pads carry NaN weights so they never pass a threshold.
    """

    band: torch.Tensor  # [pieces] source index0 of the piece
    index1: torch.Tensor  # [pieces] source index1 of the piece
    positions: torch.Tensor  # [pieces, P] output positions (0 at pads)
    weight0: torch.Tensor  # [pieces, P] float32 (NaN at pads)
    weight1: torch.Tensor


def _axis(in_size: int, out_size: int, device) -> _Axis:
    # PyTorch: scale = in / out (float32); src = max(scale * (i + 0.5) - 0.5, 0);
    # i0 = min(floor(src), in - 1); lambda1 = clamp(src - i0, 0, 1); i1 = i0 + (i0 < in - 1).
    scale = torch.tensor(in_size, dtype=torch.float32) / torch.tensor(out_size, dtype=torch.float32)
    i = torch.arange(out_size, dtype=torch.float32)
    src = (scale * (i + 0.5) - 0.5).clamp(min=0)
    index0 = src.long().clamp(max=in_size - 1)
    weight1 = (src - index0.float()).clamp(0, 1)
    weight0 = 1 - weight1
    width = max(1, -(-out_size // in_size))
    bands, positions = [], []
    for band in range(in_size):
        outs = torch.nonzero(index0 == band).flatten().tolist()
        for start in range(0, len(outs), width):
            bands.append(band)
            positions.append(outs[start : start + width])
    P = len(bands)
    pos = torch.zeros((P, width), dtype=torch.long)
    w0 = torch.full((P, width), float("nan"))
    w1 = torch.full((P, width), float("nan"))
    for k, outs in enumerate(positions):
        pos[k, : len(outs)] = torch.tensor(outs)
        w0[k, : len(outs)] = weight0[outs]
        w1[k, : len(outs)] = weight1[outs]
    band = torch.tensor(bands, dtype=torch.long)
    index1 = band + (band < in_size - 1).long()
    return _Axis(*(t.to(device) for t in (band, index1, pos, w0, w1)))


_AXES: dict[tuple[int, int, str], _Axis] = {}


def _cached_axis(in_size: int, out_size: int, device: torch.device) -> _Axis:
    key = (in_size, out_size, str(device))
    if key not in _AXES:
        _AXES[key] = _axis(in_size, out_size, device)
    return _AXES[key]


def _exact_values(acts: torch.Tensor, pair: torch.Tensor, y: torch.Tensor, x: torch.Tensor, size) -> torch.Tensor:
    """interpolate()'s own values at output pixels (y, x) of the maps ``pair`` (= n * U + u)."""
    B, U, h, w = acts.shape
    pairs = torch.unique(pair)
    dense = F.interpolate(acts.reshape(B * U, 1, h, w)[pairs], size=size, mode="bilinear", align_corners=False)
    return dense[torch.searchsorted(pairs, pair), 0, y, x]


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
    # Output can pass T only near a cell above T; cells within a hair of T are kept too, as
    # weights that sum to 1 may round a mix of them just above T. (T = 0: zeros stay out,
    # since mixing zeros gives exactly zero.)
    hot = acts > (T - 1e-5 * T.abs())[None, :, None, None]
    # Band (b, c) uses input cells b, b+1 by c, c+1 (clamped at the edge): max-pool 2x2.
    # (A 2x2 OR of shifted bool views: max_pool2d over a float copy was 14 ms a batch at layer4, 1/7 of the counts.)
    padded = F.pad(hot, (0, 1, 0, 1))
    hot = (padded[:, :, :-1, :-1] | padded[:, :, 1:, :-1]) | (padded[:, :, :-1, 1:] | padded[:, :, 1:, 1:])
    tiles = hot[:, :, ry.band][:, :, :, rx.band]  # [B, U, pieces_y, pieces_x]
    tn, tu, ty, tx = tiles.nonzero(as_tuple=True)
    R, C = ry.positions.shape[1], rx.positions.shape[1]
    flat = acts.reshape(-1)
    area = torch.zeros(B * U, dtype=torch.long, device=dev)
    found_n, found_u, found_p = [], [], []
    step = max(1, _CHUNK_ELEMENTS // (R * C))
    for s in range(0, len(tn), step):
        n, u, py, px = tn[s : s + step], tu[s : s + step], ty[s : s + step], tx[s : s + step]
        base = (n * U + u) * (h * w)
        k0, k1 = ry.band[py] * w, ry.index1[py] * w
        l0, l1 = rx.band[px], rx.index1[px]
        x00, x01 = flat[base + k0 + l0][:, None], flat[base + k0 + l1][:, None]
        x10, x11 = flat[base + k1 + l0][:, None], flat[base + k1 + l1][:, None]
        wx0, wx1 = rx.weight0[px], rx.weight1[px]  # [t, C]
        wy0, wy1 = ry.weight0[py], ry.weight1[py]  # [t, R]
        corner = torch.stack([x00, x01, x10, x11]).abs().amax(0).flatten()
        Tu = T[u]
        # PyTorch's kernel may round differently (FMA, vector lanes): values within a few
        # ulps of T are taken from interpolate() itself, so masks match it bit for bit.
        tol = 1e-5 * (corner + Tu.abs()) + 1e-30
        # Only the rows of a tile that can pass: a row is a convex mix of the tile's top and bottom
        # rows, each a convex mix of its two corners, so it never exceeds wy0 * max(top corners) +
        # wy1 * max(bottom corners). Rows below T - 2 tol are skipped (the margin dwarfs rounding; NaN
        # pads fail the test); the rows kept are computed exactly as before, so the masks are unchanged.
        top, bottom = torch.maximum(x00, x01), torch.maximum(x10, x11)  # [t, 1]
        rows = wy0 * top + wy1 * bottom  # [t, R]
        tr, r = (rows > (Tu - 2 * tol)[:, None]).nonzero(as_tuple=True)
        # Columns mixed first, then rows, as PyTorch's kernel does.
        t0 = x00[tr] * wx0[tr] + x01[tr] * wx1[tr]  # [k, C]
        t1 = x10[tr] * wx0[tr] + x11[tr] * wx1[tr]
        up = t0 * wy0[tr, r][:, None] + t1 * wy1[tr, r][:, None]  # [k, C]; NaN at pads
        k, c = (up > (Tu - tol)[tr][:, None]).nonzero(as_tuple=True)
        values = up[k, c]
        t, r = tr[k], r[k]
        y, x = ry.positions[py[t], r], rx.positions[px[t], c]
        close = values <= Tu[t] + tol[t]
        if bool(close.any()):
            values[close] = _exact_values(acts, (n * U + u)[t][close], y[close], x[close], (sh, sw))
        hit = values > Tu[t]
        t, y, x = t[hit], y[hit], x[hit]
        pair = n[t] * U + u[t]
        area.index_add_(0, pair, torch.ones_like(pair))
        found_n.append(n[t])
        found_u.append(u[t])
        found_p.append(y * sw + x)
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
    valid = ~ax.weight0.isnan()
    rows = ax.positions[valid]
    m.index_put_((rows, ax.band[:, None].expand_as(valid)[valid]), ax.weight0[valid], accumulate=True)
    m.index_put_((rows, ax.index1[:, None].expand_as(valid)[valid]), ax.weight1[valid], accumulate=True)
    return m


def upsample_for_pictures(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """[k, h, w] -> [k, H, W] bilinear as two small matmuls: much faster than interpolate()
    for a handful of maps, equal to it up to float rounding (fine for pictures, not IoU)."""
    ry, rx = _matrix(maps.shape[1], size[0]), _matrix(maps.shape[2], size[1])
    return ry @ maps.float() @ rx.t()
