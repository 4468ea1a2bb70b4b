"""Benchmark: forward pass alone vs a full dissection on a synthetic Broden-format set.

Both runs use the same loader (decoding and normalising included), so the ratio shows
what top images, thresholds, IoU counts and exemplar pictures cost on top of the forward
pass. Target: full dissection within 1.3x of forward-only for resnet18 layer4, 2,000 images
at 224 px (segmentations at 112 px) on the CPU.
"""

from __future__ import annotations

import csv
import resource
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .datasets import make_loader, open_dataset
from .dissect import DissectOptions, dissect
from .models import load_model

_CATEGORIES = ("object", "part", "scene", "texture")
_PIXEL_LABELS = {"object": 12, "part": 6}  # labels per pixel-labelled category
_IMAGE_LABELS = {"scene": 8, "texture": 5}  # labels per image-level category


def write_synthetic_broden(root: Path, n_images: int, size: int = 224, seg_size: int | None = None, seed: int = 0) -> Path:
    """A Broden-format set of smooth colour images with blob-shaped object/part labels.

    Smooth images (low-frequency noise) decode at a realistic JPEG speed, unlike white noise.
    """
    seg_size = seg_size or size // 2
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images" / "synthetic").mkdir(parents=True, exist_ok=True)
    numbers: dict[str, list[int]] = {}
    labels = []
    n = 1
    for cat in _CATEGORIES:
        count = _PIXEL_LABELS.get(cat) or _IMAGE_LABELS[cat]
        numbers[cat] = list(range(n, n + count))
        labels += [(k, f"{cat}{k - n}", cat) for k in numbers[cat]]
        n += count
    yy, xx = np.mgrid[0:seg_size, 0:seg_size]
    rows = []
    for i in range(n_images):
        coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
        name = f"synthetic/{i:06d}.jpg"
        image.save(root / "images" / name, quality=90)
        cells = {}
        for cat in _PIXEL_LABELS:
            seg = np.zeros((seg_size, seg_size), dtype=np.int64)
            for _ in range(int(rng.integers(1, 4))):  # a few elliptic blobs per image
                cy, cx = rng.uniform(0, seg_size, 2)
                ry, rx = rng.uniform(seg_size / 10, seg_size / 3, 2)
                seg[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = rng.choice(numbers[cat])
            rgb = np.zeros((seg_size, seg_size, 3), dtype=np.uint8)
            rgb[..., 0], rgb[..., 1] = seg % 256, seg // 256
            png = f"synthetic/{i:06d}_{cat}.png"
            Image.fromarray(rgb).save(root / "images" / png)
            cells[cat] = png
        for cat in _IMAGE_LABELS:
            cells[cat] = str(rng.choice(numbers[cat]))
        rows.append([name, "train", size, size, seg_size, seg_size, *(cells[c] for c in _CATEGORIES)])
    _write(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", *_CATEGORIES], rows)
    _write(root / "category.csv", ["name", "first", "last", "count", "frequency"],
           [[c, numbers[c][0], numbers[c][-1], len(numbers[c]), n_images] for c in _CATEGORIES])
    _write(root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
           [[k, name, f"{cat}(1)", 1, 1.0, ""] for k, name, cat in labels])
    for cat in _CATEGORIES:
        _write(root / f"c_{cat}.csv", ["code", "number", "name", "frequency", "coverage"],
               [[j + 1, k, name, 1, 1.0] for j, (k, name, c) in enumerate(x for x in labels if x[2] == cat)])
    return root


def _write(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


@dataclass
class BenchResult:
    images: int
    forward_s: float
    dissect_s: float
    dissect_timings: dict
    peak_rss_mib: float
    peak_cuda_mib: float | None

    @property
    def ratio(self) -> float:
        return self.dissect_s / self.forward_s

    def lines(self) -> list[str]:
        out = [
            f"images: {self.images}",
            f"forward only: {self.forward_s:.2f} s ({self.images / self.forward_s:.1f} images/s)",
            f"full dissection: {self.dissect_s:.2f} s ({self.images / self.dissect_s:.1f} images/s)",
            f"ratio: {self.ratio:.3f} (target <= 1.3)",
            "dissection stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.dissect_timings.items()),
            f"peak memory (RSS): {self.peak_rss_mib:.0f} MiB",
        ]
        if self.peak_cuda_mib is not None:
            out.append(f"peak CUDA memory: {self.peak_cuda_mib:.0f} MiB")
        return out


def forward_only(model, dataset, *, batch_size: int, device: str, num_workers: int = 0) -> float:
    """Seconds to load, normalise and forward every image once (no hooks)."""
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers)
    model.to(device).eval()
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            model(batch.images.to(device))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def run_bench(
    *,
    images: int = 2000,
    size: int = 224,
    seg_size: int | None = None,
    model: str = "resnet18",
    layers: list[str] | None = None,
    batch_size: int = 32,
    device: str = "cpu",
    num_workers: int = 0,
    threads: int | None = None,
    top_k: int = 10,
    render: bool = True,
    cache_dtype: str = "float32",
    workdir: str | None = None,
    keep: bool = False,
) -> BenchResult:
    if threads:
        torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="unitcrowd-bench-", dir=workdir))
    try:
        data = write_synthetic_broden(tmp / "data", images, size, seg_size)
        dataset = open_dataset(f"broden:{data}")
        net = load_model(model, None)
        # A warm-up batch, so neither timed run pays for first-call allocations.
        with torch.inference_mode():
            net.to(device).eval()(torch.zeros(min(batch_size, images), 3, size, size, device=device))
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        fwd = forward_only(net, dataset, batch_size=batch_size, device=device, num_workers=num_workers)
        options = DissectOptions(
            layers=layers or ["layer4"], top_k=top_k, batch_size=batch_size, device=device,
            num_workers=num_workers, render=render, cache_dtype=cache_dtype, progress_bar=False,
        )
        t0 = time.perf_counter()
        result = dissect(net, dataset, options, tmp / "out")
        full = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        cuda = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        return BenchResult(images, fwd, full, result.timings, rss, cuda)
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
