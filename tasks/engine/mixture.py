"""Mixture-of-digits generator (the seed's controlled experiment), written as a Broden dataset.

Each image holds two different digits and its class is the unordered pair. Class index
order is `itertools.combinations(effective_digits, 2)` (0+1, 0+2, ..., 8+9: 45 classes);
with redundant digits (e.g. 8 and 9 shown at random in every class) only the other digits
form classes (28 classes over 0-7).

Files written under `out_dir` (readable by `datasets.BrodenDataset`):
  images/NNNNN.png          the picture (grey, stored as RGB), canvas x canvas
  images/NNNNN_object.png   digit masks, label number = digit + 1 in R (Broden: R + 256*G)
  index.csv                 Broden index plus a `class` column (class index)
  category.csv, label.csv, c_object.csv   one category "object", concepts "0".."9"
  sources.csv               per image: digits, their source-pool ids and top-left corners
  meta.json                 source, seed, split, canvas, class names, ...

Digit pixels: a source digit is scaled to `digit_size` and every value at or below
`threshold` is set to 0, so a digit's pixels are exactly its non-zero pixels and the
union of the masks is exactly the non-zero pixels of the picture. Digits are placed at
random, re-drawn (up to 30 times) until their strokes do not touch; if they still
overlap, the picture keeps the brighter value and the mask the brighter digit (ties go
to the digit pasted later).

Train and val sets are drawn from disjoint halves of the source pool: every source is
split once per digit with `pool_seed` (not `seed`), `val_fraction` of it for val.
"""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DatasetError

DIGITS = tuple(range(10))
CATEGORY = "object"


def class_pairs(digits: Sequence[int]) -> list[tuple[int, int]]:
    """Class index -> digit pair, in `itertools.combinations` order."""
    return list(itertools.combinations(sorted(digits), 2))


def class_name(pair: tuple[int, int]) -> str:
    return f"{pair[0]}+{pair[1]}"


@dataclass
class DigitPool:
    images: np.ndarray  # uint8 [N, s, s], 0 wherever the digit is not
    labels: np.ndarray  # int64 [N] digit 0..9
    ids: np.ndarray  # int64 [N] index of each digit in the full source


# -- digit sources ------------------------------------------------------------------------


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise DatasetError(f"Cannot read the IDX file {path}: {exc}") from exc
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DatasetError(f"{path} is not an unsigned-byte IDX file (MNIST format).")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * k : 8 + 4 * k], "big") for k in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise DatasetError(f"{path} is truncated: header says {shape}, found {body.size} bytes of data.")
    return body.reshape(shape)


def _idx_pairs(path: Path) -> list[tuple[Path, Path]]:
    if not path.exists():
        raise DatasetError(f"The IDX path {path} does not exist; give an MNIST *-images-idx3-ubyte[.gz] file or its "
                           f"folder.")
    # Official names are train-images-idx3-ubyte; common mirrors spell it train-images.idx3-ubyte.
    files = sorted(path.glob("*images[-.]idx3-ubyte*")) if path.is_dir() else [path]
    pairs = []
    for images in files:
        labels = images.with_name(images.name.replace("images", "labels", 1).replace("idx3", "idx1", 1))
        if labels == images or not labels.is_file():
            raise DatasetError(f"No labels file next to {images}; expected {labels.name}.")
        pairs.append((images, labels))
    if not pairs:
        raise DatasetError(f"{path} holds no *-images-idx3-ubyte[.gz] file.")
    return pairs


def _load_idx(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """All image/label IDX pairs of a folder (sorted by name), or one images file."""
    images, labels = [], []
    for img_path, lab_path in _idx_pairs(path):
        img, lab = _read_idx(img_path), _read_idx(lab_path)
        if img.ndim != 3 or lab.ndim != 1 or len(img) != len(lab):
            raise DatasetError(f"{img_path} and {lab_path} do not hold matching images [N,h,w] and labels [N].")
        images.append(img)
        labels.append(lab)
    return np.concatenate(images).astype(np.float32) / 255.0, np.concatenate(labels).astype(np.int64)


def _load_sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # the only sklearn use in the engine

    bunch = load_digits()
    return bunch.images.astype(np.float32) / 16.0, bunch.target.astype(np.int64)


def _load_torchvision_mnist(cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from torchvision.datasets import MNIST

    try:
        mnist = MNIST(str(cache_dir), train=True, download=True)
    except Exception as exc:  # any download/extract failure means the same to the user
        raise DatasetError(
            f"Could not download MNIST into {cache_dir} ({exc}). Use the bundled source "
            "`digits`, or `idx:PATH` with MNIST IDX files you already have."
        ) from exc
    return mnist.data.numpy().astype(np.float32) / 255.0, mnist.targets.numpy().astype(np.int64)


def load_digit_source(source: str, *, digit_size: int = 28, threshold: float = 0.25) -> DigitPool:
    """Digits scaled (bilinear) to `digit_size`, values <= `threshold` (0..1) zeroed.

    source: "digits" (scikit-learn's bundled 8x8 digits), "idx:PATH" (an MNIST
    *-images-idx3-ubyte[.gz] file, or a folder of them with their labels files) or
    "mnist[:CACHE_DIR]" (torchvision's downloader; needs the network).
    """
    import torch
    import torch.nn.functional as F

    kind, _, arg = source.partition(":")
    if kind == "digits":
        images, labels = _load_sklearn_digits()
    elif kind == "idx" and arg:
        images, labels = _load_idx(Path(arg))
    elif kind == "mnist":
        images, labels = _load_torchvision_mnist(Path(arg or Path.home() / ".cache" / "unitcrowd" / "mnist"))
    else:
        raise DatasetError(f"Unknown digit source {source!r}; use 'digits', 'idx:PATH' or 'mnist[:CACHE_DIR]'.")
    if labels.min() < 0 or labels.max() > 9:
        raise DatasetError(f"Digit source {source!r} has labels outside 0..9.")
    x = torch.from_numpy(images)[:, None]
    if x.shape[-1] != digit_size or x.shape[-2] != digit_size:
        x = F.interpolate(x, size=(digit_size, digit_size), mode="bilinear", align_corners=False)
    u8 = (x[:, 0].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    u8[u8 <= round(threshold * 255)] = 0
    return DigitPool(u8, labels, np.arange(len(labels), dtype=np.int64))


def split_pool(pool: DigitPool, split: str, *, val_fraction: float = 0.2, pool_seed: int = 0) -> DigitPool:
    """The train or val part of `pool`; the two parts never share a source digit."""
    if split not in ("train", "val"):
        raise DatasetError(f"split must be 'train' or 'val', got {split!r}.")
    rng = np.random.default_rng(pool_seed)
    keep = []
    for digit in DIGITS:
        members = np.flatnonzero(pool.labels == digit)
        members = members[rng.permutation(len(members))]
        n_val = int(round(val_fraction * len(members)))
        keep.append(members[:n_val] if split == "val" else members[n_val:])
    chosen = np.sort(np.concatenate(keep))
    return DigitPool(pool.images[chosen], pool.labels[chosen], pool.ids[chosen])


# -- composing pictures ---------------------------------------------------------------------


def _compose(
    digits: list[np.ndarray], canvas: int, rng: np.random.Generator, tries: int = 30
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Paste the digits at random places; returns picture, mask (position+1, 0 = none), corners."""
    size = digits[0].shape[0]
    span = canvas - size + 1
    picture = np.zeros((canvas, canvas), dtype=np.uint8)
    owner = np.zeros((canvas, canvas), dtype=np.int64)
    corners: list[tuple[int, int]] = []
    for k, digit in enumerate(digits):
        stroke = digit > 0
        for _ in range(tries):
            r, c = (int(v) for v in rng.integers(0, span, size=2))
            if not np.any(owner[r : r + size, c : c + size][stroke]):
                break
        corners.append((r, c))
        region = picture[r : r + size, c : c + size]
        # Brighter value wins the pixel; `>=` gives ties to the digit pasted later.
        wins = stroke & (digit >= region)
        region[wins] = digit[wins]
        owner[r : r + size, c : c + size][wins] = k + 1
    return picture, owner, corners


def _write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _prepare_out_dir(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and any(out_dir.iterdir()):
        if not overwrite:
            raise DatasetError(f"{out_dir} is not empty; choose a new folder or pass overwrite=True.")
        if not (out_dir / "meta.json").is_file():
            raise DatasetError(f"{out_dir} is not empty and is not a mixture dataset; refusing to overwrite it.")
        shutil.rmtree(out_dir / "images", ignore_errors=True)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class MixtureSpec:
    """How a mixture's images are drawn: the digit source and its split, the canvas, the digits' size and
    binarising threshold, and which digits appear as redundant extras (in no class) and how often."""

    source: str = "digits"
    canvas: int = 64
    digit_size: int = 28
    threshold: float = 0.25
    redundant: Sequence[int] = ()
    redundant_prob: float = 0.5
    val_fraction: float = 0.2
    pool_seed: int = 0


def make_mixture(
    out_dir: Path | str,
    *,
    n_images: int = 20000,
    seed: int = 0,
    split: str = "train",
    spec: MixtureSpec = MixtureSpec(),
    overwrite: bool = False,
    progress: bool = False,
) -> Path:
    """Write a mixture-of-digits dataset (see the module docstring); returns `out_dir`.

    The same arguments always give the same bytes.
    """
    source, canvas, digit_size, threshold = spec.source, spec.canvas, spec.digit_size, spec.threshold
    redundant, redundant_prob = spec.redundant, spec.redundant_prob
    val_fraction, pool_seed = spec.val_fraction, spec.pool_seed
    out_dir = Path(out_dir)
    redundant = sorted(set(int(d) for d in redundant))
    effective = [d for d in DIGITS if d not in redundant]
    if any(d not in DIGITS for d in redundant) or len(effective) < 2:
        raise DatasetError(f"redundant digits must be in 0..9 and leave at least two others, got {redundant}.")
    if n_images < 1 or digit_size > canvas:
        raise DatasetError(f"Need n_images >= 1 and digit_size <= canvas (got {n_images}, {digit_size}, {canvas}).")
    pool = split_pool(load_digit_source(source, digit_size=digit_size, threshold=threshold), split,
                      val_fraction=val_fraction, pool_seed=pool_seed)
    by_digit = {d: np.flatnonzero(pool.labels == d) for d in DIGITS}
    empty = [d for d in effective + redundant if len(by_digit[d]) == 0]
    if empty:
        raise DatasetError(f"The {split} part of source {source!r} has no example of digit(s) {empty}.")
    _prepare_out_dir(out_dir, overwrite)

    pairs = class_pairs(effective)
    rng = np.random.default_rng(seed)
    index_rows, source_rows = [], []
    pixels_of = np.zeros(10, dtype=np.int64)  # labelled pixels per digit, for coverage
    images_of = np.zeros(10, dtype=np.int64)
    steps = range(n_images)
    if progress:
        from tqdm import tqdm

        steps = tqdm(steps, desc=f"mixture {split}", unit="img")
    for i in steps:
        target = int(rng.integers(len(pairs)))
        shown = list(pairs[target])
        if redundant and rng.random() < redundant_prob:
            shown.append(int(rng.choice(redundant)))
        shown = [shown[k] for k in rng.permutation(len(shown))]  # random pasting order
        picks = [int(rng.choice(by_digit[d])) for d in shown]
        picture, owner, corners = _compose([pool.images[p] for p in picks], canvas, rng)
        mask = np.zeros((canvas, canvas, 3), dtype=np.uint8)
        for k, digit in enumerate(shown):
            mask[..., 0][owner == k + 1] = digit + 1
        labels, counts = np.unique(mask[..., 0][mask[..., 0] > 0], return_counts=True)
        pixels_of[labels - 1] += counts
        images_of[labels - 1] += 1
        name = f"{i:05d}.png"
        Image.fromarray(np.repeat(picture[..., None], 3, axis=2), "RGB").save(out_dir / "images" / name,
                                                                              compress_level=1)
        Image.fromarray(mask, "RGB").save(out_dir / "images" / f"{i:05d}_{CATEGORY}.png", compress_level=1)
        index_rows.append([name, split, canvas, canvas, canvas, canvas, f"{i:05d}_{CATEGORY}.png", target])
        source_rows.append([
            name,
            ";".join(map(str, shown)),
            ";".join(str(int(pool.ids[p])) for p in picks),
            ";".join(f"{r} {c}" for r, c in corners),
        ])

    _write_csv(out_dir / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", CATEGORY, "class"], index_rows)
    _write_csv(out_dir / "sources.csv", ["image", "digits", "source_ids", "corners"], source_rows)
    _write_csv(out_dir / "category.csv", ["name", "first", "last", "count", "frequency"],
               [[CATEGORY, 1, 10, 10, n_images]])
    # coverage: mean fraction of the canvas a digit covers in the images that show it.
    coverage = [pixels_of[d] / (images_of[d] * canvas * canvas) if images_of[d] else 0.0 for d in DIGITS]
    _write_csv(out_dir / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
               [[d + 1, str(d), f"{CATEGORY}({images_of[d]})", images_of[d], f"{coverage[d]:.6f}", ""] for d in DIGITS])
    _write_csv(out_dir / f"c_{CATEGORY}.csv", ["code", "number", "name", "frequency", "coverage"],
               [[d + 1, d + 1, str(d), images_of[d], f"{coverage[d]:.6f}"] for d in DIGITS])
    meta = {
        "format": "unitcrowd-mixture",
        "version": 1,
        "source": source,
        "seed": seed,
        "split": split,
        "n_images": n_images,
        "canvas": canvas,
        "digit_size": digit_size,
        "threshold": threshold,
        "val_fraction": val_fraction,
        "pool_seed": pool_seed,
        "effective_digits": effective,
        "redundant": redundant,
        "redundant_prob": redundant_prob if redundant else 0.0,
        "class_order": "itertools.combinations(effective_digits, 2)",
        "class_names": [class_name(p) for p in pairs],
        "label_numbers": "digit + 1 (0 = background)",
        "overlap_rule": "brighter pixel wins; ties go to the digit pasted later",
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir
