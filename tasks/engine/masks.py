"""Unit masks ``bilinear_upsample(A[n, u]) > T[u]`` computed only where they can be true.

Upsampling every map of a layer to the segmentation size costs more than the forward
pass, yet the masks are nearly empty (the top 0.5% of values). Bilinear output is a
convex combination of its 4 neighbouring input cells, so an output pixel can exceed T
only inside a "tile" (the output pixels between the same 2x2 input cells) that has a
corner cell above T. Only those tiles are evaluated, with the same arithmetic as
PyTorch's CPU kernel (``torch.nn.functional.interpolate(mode="bilinear",
align_corners=False)``), so the masks are the ones NetDissect-Lite's IoU defines.
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
    first: torch.Tensor  # [pieces] output position of the piece's first output (pieces are runs)


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
    for b in range(in_size):
        outs = torch.nonzero(index0 == b).flatten().tolist()
        for start in range(0, len(outs), width):
            bands.append(b)
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
    first = pos[:, 0].clone()
    assert bool((pos == first[:, None] + torch.arange(width)).logical_or(w0.isnan()).all()), "pieces must be runs"
    return _Axis(*(t.to(device) for t in (band, index1, pos, w0, w1, first)))


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
    pair: torch.Tensor  # [M] image * U + unit


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
    # ORs of shifted bool views: cheaper than max_pool2d, which needs a float copy of the whole batch.
    padded = F.pad(hot, (0, 1, 0, 1))
    hot = (padded[:, :, :-1, :-1] | padded[:, :, 1:, :-1]) | (padded[:, :, :-1, 1:] | padded[:, :, 1:, 1:])
    # index_select over a uint8 view: on the CPU it is several times faster than advanced indexing of bools.
    tiles = hot.view(torch.uint8).reshape(B * U, h, w).index_select(1, ry.band).index_select(2, rx.band)
    # (image * U + unit, piece row, piece column) of every tile that can pass
    tpair, ty, tx = tiles.view(B * U, len(ry.band), len(rx.band)).nonzero(as_tuple=True)
    R, C = ry.positions.shape[1], rx.positions.shape[1]
    flat = acts.reshape(-1)
    T_pair = T.expand(B, U).reshape(-1)  # threshold per image * U + unit
    area = torch.zeros(B * U, dtype=torch.long, device=dev)
    found_pair, found_p = [], []  # per true pixel: n * U + u, and y * sw + x
    # Tiles per chunk: each brings R * C values and a dozen per-tile numbers (indices, corners,
    # tolerances); at 2x upsampling (layer1) the per-tile numbers are most of the chunk.
    step = max(1, _CHUNK_ELEMENTS // (R * C + 16))
    # 1-D gathers as index_select throughout: faster than advanced indexing on the CPU.
    pick = torch.index_select
    for s in range(0, len(tpair), step):
        tile_pair, py, px = tpair[s : s + step], ty[s : s + step], tx[s : s + step]
        base = tile_pair * (h * w)
        k0, k1 = pick(ry.band, 0, py) * w, pick(ry.index1, 0, py) * w
        l0, l1 = pick(rx.band, 0, px), pick(rx.index1, 0, px)
        x00, x01 = pick(flat, 0, base + k0 + l0)[:, None], pick(flat, 0, base + k0 + l1)[:, None]
        x10, x11 = pick(flat, 0, base + k1 + l0)[:, None], pick(flat, 0, base + k1 + l1)[:, None]
        wy0, wy1 = pick(ry.weight0, 0, py), pick(ry.weight1, 0, py)  # [t, R]
        corner = torch.stack([x00, x01, x10, x11]).abs().amax(0).flatten()
        Tu = pick(T_pair, 0, tile_pair)
        # PyTorch's kernel may round differently (FMA, vector lanes, the order below): values within
        # tol of T are taken from interpolate() itself, so masks match it bit for bit. A convex mix of
        # four float32 values rounds by at most a few ulps of the largest (2.4e-7 relative; measured
        # 1.5e-7 on resnet18 layer4): 2e-6 leaves an 8x margin, and a tighter tolerance redoes fewer values.
        tol = 2e-6 * (corner + Tu.abs()) + 1e-30
        # Only the rows of a tile that can pass: a row is a convex mix of the tile's top and bottom
        # rows, each a convex mix of its two corners, so it never exceeds wy0 * max(top corners) +
        # wy1 * max(bottom corners). Rows below T - 2 tol are skipped (the margin dwarfs rounding; NaN
        # pads fail the test).
        top, bottom = torch.maximum(x00, x01), torch.maximum(x10, x11)  # [t, 1]
        rows = wy0 * top + wy1 * bottom  # [t, R]
        tr, r = (rows > (Tu - 2 * tol)[:, None]).nonzero(as_tuple=True)
        # Rows mixed first, then columns: per kept row two numbers (its left and right corner mix),
        # one [k, C] multiply-add across the row. PyTorch mixes columns first; the two orders differ
        # by a few ulps, inside tol, and every value within tol of T is taken from interpolate()
        # below, so the masks are PyTorch's bit for bit.
        ay0, ay1 = wy0[tr, r], wy1[tr, r]
        c00, c01, c10, c11 = (pick(x[:, 0], 0, tr) for x in (x00, x01, x10, x11))
        left = (c00 * ay0 + c10 * ay1)[:, None]  # [k, 1]
        right = (c01 * ay0 + c11 * ay1)[:, None]
        # left * w0 + right * w1 with w0 = 1 - w1: one gathered weight row per kept row
        row_px, row_T, row_tol = pick(px, 0, tr), pick(Tu, 0, tr), pick(tol, 0, tr)  # per kept row
        up = torch.addcmul(left, right - left, pick(rx.weight1, 0, row_px))  # [k, C]; NaN at pads
        # Above T + tol the value passes whatever the rounding; within tol of T it is redone.
        sure = up > (row_T + row_tol)[:, None]
        near = (up > (row_T - row_tol)[:, None]) != sure
        # A piece's outputs are consecutive: pixel = (first row + r) * sw + first column + c.
        row_pixel = (pick(ry.first, 0, pick(py, 0, tr)) + r) * sw + pick(rx.first, 0, row_px)
        row_pair = pick(tile_pair, 0, tr)
        if bool(near.any()):
            nk, nc = near.nonzero(as_tuple=True)
            where = pick(row_pixel, 0, nk) + nc
            exact = _exact_values(acts, pick(row_pair, 0, nk), where // sw, where % sw, (sh, sw))
            sure[nk, nc] = exact > pick(row_T, 0, nk)
        k, c = sure.nonzero(as_tuple=True)
        found_pair.append(pick(row_pair, 0, k))
        found_p.append(pick(row_pixel, 0, k) + c)
    empty = torch.zeros(0, dtype=torch.long, device=dev)
    pair = torch.cat(found_pair) if found_pair else empty
    area.index_add_(0, pair, torch.ones_like(pair))
    image = pair.div(U, rounding_mode="floor")
    return SparseMasks(image, pair - image * U, torch.cat(found_p) if found_p else empty, area.view(B, U), pair)


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
