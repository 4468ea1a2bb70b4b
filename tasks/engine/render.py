"""Exemplar pictures of a unit: NetDissect overlay ``image*(0.2+0.8*mask)``, outlines, strips."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .masks import upsample_for_pictures

HIGHLIGHTS = ("overlay", "outline")
STRIP_GAP = 3  # white pixels between pictures of a strip (NetDissect)
OUTLINE_COLOR = (255, 255, 0)


def image_mask(feature_map: torch.Tensor, size: tuple[int, int], threshold: float) -> np.ndarray:
    """bool [H, W]: the unit's map upsampled bilinearly to the image size, > threshold."""
    up = F.interpolate(feature_map.float()[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return (up > float(threshold)).cpu().numpy()


def overlay(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """NetDissect style: outside the mask dimmed to 20%, inside unchanged."""
    factor = (0.2 + 0.8 * mask.astype(np.float64))[..., None]
    return (image * factor).astype(np.uint8)  # truncation, as NetDissect's astype(uint8)


def outline(image: np.ndarray, mask: np.ndarray, width: int = 2) -> np.ndarray:
    """The unit's region outlined in yellow; the picture itself left undimmed."""
    m = torch.from_numpy(mask.astype(np.float32))[None, None]
    # Boundary = mask minus its erosion (an erosion is a min-pool, i.e. -maxpool(-m)).
    eroded = -F.max_pool2d(-m, kernel_size=2 * width + 1, stride=1, padding=width)
    edge = (m - eroded)[0, 0].numpy() > 0
    out = image.copy()
    out[edge] = OUTLINE_COLOR
    return out


def highlight(image: np.ndarray, mask: np.ndarray, style: str = "overlay") -> np.ndarray:
    if style == "overlay":
        return overlay(image, mask)
    if style == "outline":
        return outline(image, mask)
    raise ValueError(f"unknown highlight style '{style}'; choose one of {', '.join(HIGHLIGHTS)}")


def strip(pictures: list[np.ndarray], gap: int = STRIP_GAP) -> np.ndarray:
    """Pictures in one row with white gaps; shorter pictures are padded with white below."""
    if not pictures:
        raise ValueError("a strip needs at least one picture")
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    x = 0
    for p in pictures:
        out[: p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out


def save_picture(array: np.ndarray, path: Path, make_dirs: bool = True) -> None:
    if make_dirs:
        path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array)
    if path.suffix.lower() in (".jpg", ".jpeg"):
        image.save(path, quality=90)
    else:
        image.save(path)


def unit_dir_name(unit: int) -> str:
    """Files number units from 1, as tally.csv does (unit 0 -> unit_0001)."""
    return f"unit_{unit + 1:04d}"


class _ImageCache:
    """Decoded RGB arrays (and their 20% dimmed copies) of recently used images.

    Top images recur across units, so each is decoded and dimmed once while it is in use.
    """

    def __init__(self, load: Callable[[int], Image.Image], size: int = 256) -> None:
        self.load = load
        self.size = size
        self.items: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def get(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index in self.items:
            self.items.move_to_end(index)
            return self.items[index]
        rgb = np.asarray(self.load(index).convert("RGB"))
        entry = (rgb, (rgb * 0.2).astype(np.uint8))  # outside the mask: image * 0.2, truncated
        self.items[index] = entry
        if len(self.items) > self.size:
            self.items.popitem(last=False)
        return entry


@dataclass
class RenderedLayer:
    exemplars: dict[int, list[str]] = field(default_factory=dict)
    plain: dict[int, list[str]] = field(default_factory=dict)
    strips: dict[int, str] = field(default_factory=dict)


def _unit_masks(maps: list[torch.Tensor], sizes: list[tuple[int, int]], threshold: float) -> list[np.ndarray]:
    """Masks of one unit's top images; one interpolate call when all shapes agree."""
    if len(set(sizes)) == 1 and len({m.shape for m in maps}) == 1:
        up = upsample_for_pictures(torch.stack(maps), sizes[0])
        return list((up > float(threshold)).numpy())
    return [image_mask(m, size, threshold) for m, size in zip(maps, sizes)]


@dataclass(frozen=True)
class Pictures:
    """What a unit's pictures look like: how many of its top images, the highlight, the file format."""

    render_k: int
    style: str = "overlay"  # one of HIGHLIGHTS
    fmt: str = "jpg"


def render_layer(
    load_rgb: Callable[[int], Image.Image],
    get_map: Callable[[int, int, int], torch.Tensor],
    topk_indices: np.ndarray,
    thresholds: np.ndarray,
    out_dir: Path,
    layer_dir: str,
    *,
    pictures: Pictures,
    progress: Callable[[float], None] | None = None,
) -> RenderedLayer:
    """Pictures of each unit's top images under ``out_dir/layer_dir/exemplars``.

    ``get_map(unit, rank, image_index)`` gives the unit's [h, w] map on that image. Paths in
    the result are relative to ``out_dir``. Plain (un-highlighted) pictures are written
    once per image and shared by every unit that ranks it.
    """
    if pictures.style not in HIGHLIGHTS:
        raise ValueError(f"unknown highlight style '{pictures.style}'; choose one of {', '.join(HIGHLIGHTS)}")
    base = Path(layer_dir) / "exemplars"
    images = _ImageCache(load_rgb)
    n_units = topk_indices.shape[0]
    pictures = replace(pictures, render_k=min(pictures.render_k, topk_indices.shape[1]))
    for sub in ["plain", "strips", *(unit_dir_name(u) for u in range(n_units))]:
        (out_dir / base / sub).mkdir(parents=True, exist_ok=True)
    # Encoding and writing release the GIL: a small pool overlaps them with the array work.
    # The tensors here are tiny, so torch's own thread team would only wait on the pool.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _render_units(images, get_map, topk_indices, thresholds, out_dir, base, pictures, progress)
    finally:
        torch.set_num_threads(threads)


def _render_units(images: _ImageCache, get_map: Callable[[int, int, int], torch.Tensor], topk_indices: np.ndarray,
                  thresholds: np.ndarray, out_dir: Path, base: Path, look: Pictures,
                  progress: Callable[[float], None] | None) -> RenderedLayer:
    """The pictures of every unit into `out_dir / base` (paths in the result relative to `out_dir`)."""
    k, style, fmt = look.render_k, look.style, look.fmt
    done = RenderedLayer()
    written_plain: set[int] = set()
    n_units = topk_indices.shape[0]
    with ThreadPoolExecutor(max_workers=2) as pool:
        pending = []
        for u in range(n_units):
            indices = [int(i) for i in topk_indices[u, :k]]
            entries = [images.get(i) for i in indices]
            maps = [get_map(u, r, i) for r, i in enumerate(indices)]
            masks = _unit_masks(maps, [e[0].shape[:2] for e in entries], thresholds[u])
            if style == "overlay" and entries and len({e[0].shape for e in entries}) == 1:
                # Drawn straight into the unit's strip: each picture is a view of it (the dimmed
                # copy, then the image where the mask holds: == image * (0.2 + 0.8 * mask)),
                # so no stacked copies and no second copy for the strip.
                height, width = entries[0][0].shape[:2]
                sheet = np.full((height, len(entries) * (width + STRIP_GAP) - STRIP_GAP, 3), 255, dtype=np.uint8)
                highlighted = []
                for r, ((rgb, dim), m) in enumerate(zip(entries, masks)):
                    view = sheet[:, r * (width + STRIP_GAP) : r * (width + STRIP_GAP) + width]
                    np.copyto(view, dim)
                    np.copyto(view, rgb, where=m[..., None])
                    highlighted.append(view)
                canvas: np.ndarray | None = sheet
            else:
                highlighted = [highlight(e[0], m, style) for e, m in zip(entries, masks)]
                canvas = strip(highlighted) if highlighted else None
            pictures, files, plains = [], [], []
            for r, (index, (rgb, _), pic) in enumerate(zip(indices, entries, highlighted)):
                rel = base / unit_dir_name(u) / f"rank_{r:02d}.{fmt}"
                plain_rel = base / "plain" / f"image_{index:06d}.{fmt}"
                pending.append(pool.submit(save_picture, pic, out_dir / rel, False))
                if index not in written_plain:
                    written_plain.add(index)
                    pending.append(pool.submit(save_picture, rgb, out_dir / plain_rel, False))
                pictures.append(pic)
                files.append(rel.as_posix())
                plains.append(plain_rel.as_posix())
            if pictures and canvas is not None:
                strip_rel = base / "strips" / f"{unit_dir_name(u)}.{fmt}"
                pending.append(pool.submit(save_picture, canvas, out_dir / strip_rel, False))
                done.strips[u] = strip_rel.as_posix()
            done.exemplars[u] = files
            done.plain[u] = plains
            if len(pending) > 64:
                for job in pending:
                    job.result()  # re-raise write errors; bounds queued pictures in memory
                pending.clear()
            if progress is not None:
                progress((u + 1) / n_units)
        for job in pending:
            job.result()
    return done
