"""Pictures for the GAN report: sample grids, segmentation overlays, before/after strips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..render import save_picture, strip
from .intervene import Baseline, Intervention, intervening
from .models import segment, to_uint8_rgb

# One colour per digit (label d + 1); background stays the picture itself.
PALETTE = np.array([
    [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
    [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212],
], dtype=np.uint8)


def enlarge(picture: np.ndarray, factor: int = 3) -> np.ndarray:
    """Nearest-neighbour zoom: 32 px digits are unreadable at their own size in a page."""
    return picture.repeat(factor, axis=0).repeat(factor, axis=1)


def grid(pictures: list[np.ndarray], columns: int = 8, gap: int = 2) -> np.ndarray:
    rows = [strip(pictures[s : s + columns], gap) for s in range(0, len(pictures), columns)]
    width = max(r.shape[1] for r in rows)
    rows = [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0)), constant_values=255) for r in rows]
    return np.concatenate([np.pad(r, ((0, gap), (0, 0), (0, 0)), constant_values=255) for r in rows])[:-gap]


def colour_labels(picture: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """The picture with each segmented digit's pixels painted in its palette colour."""
    out = picture.copy()
    digit = labels > 0
    out[digit] = PALETTE[labels[digit].astype(int) - 1]
    return out


def legend_html() -> str:
    return " ".join(f'<span style="background:rgb{tuple(int(v) for v in PALETTE[d])};padding:0 6px">{d}</span>'
                    for d in range(10))


@torch.no_grad()
def sample_sheet(generator: nn.Module, segmenter: nn.Module, z: torch.Tensor, out_dir: Path) -> dict[str, str]:
    """generated.png (a grid of samples) and segmented.png (the same with the segmenter's digits)."""
    images = generator.eval()(z)
    rgb = to_uint8_rgb(images).numpy()
    labels = segment(segmenter, images).numpy()
    plain = [enlarge(p) for p in rgb]
    painted = [enlarge(colour_labels(p, lab)) for p, lab in zip(rgb, labels)]
    save_picture(grid(plain), out_dir / "generated.png")
    save_picture(grid(painted), out_dir / "segmented.png")
    return {"generated": "pictures/generated.png", "segmented": "pictures/segmented.png"}


OUTLINE = np.array([255, 255, 255], dtype=np.uint8)


def outline(picture: np.ndarray, region: np.ndarray | torch.Tensor | None) -> np.ndarray:
    """The picture with the border of ``region`` (bool, any size that tiles the picture) drawn in white."""
    if region is None:
        return picture
    r = np.asarray(region, dtype=bool)
    cell = picture.shape[0] // r.shape[0]
    mask = r.repeat(cell, axis=0).repeat(cell, axis=1)
    inner = mask.copy()
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    inner[[0, -1], :] = False
    inner[:, [0, -1]] = False
    out = picture.copy()
    out[mask & ~inner] = OUTLINE
    return out


@torch.no_grad()
def before_after(generator: nn.Module, segmenter: nn.Module, iv: Intervention, base: Baseline, number: int,
                 path: Path, n: int = 6, picks: list[int] | None = None) -> list[int]:
    """Two rows (before, after) of ``picks`` (baseline sample indices; by default the n samples with the
    most pixels of label ``number``), digits coloured by the segmenter, the intervention's region outlined."""
    if picks is None:
        counts = (base.labels == number).flatten(1).sum(1)
        picks = [int(i) for i in torch.argsort(counts, descending=True, stable=True)[:n]]
    z = base.z[picks]
    before = to_uint8_rgb(generator.eval()(z)).numpy()
    with intervening(generator, iv):
        after_images = generator(z)
    after = to_uint8_rgb(after_images).numpy()
    after_lab = segment(segmenter, after_images).numpy()
    top = strip([enlarge(outline(colour_labels(p, base.labels[i].numpy()), iv.region)) for p, i in zip(before, picks)])
    bottom = strip([enlarge(outline(colour_labels(p, lab), iv.region)) for p, lab in zip(after, after_lab)])
    gap = np.full((4, top.shape[1], 3), 255, dtype=np.uint8)
    save_picture(np.concatenate([top, gap, bottom]), path)
    return picks
