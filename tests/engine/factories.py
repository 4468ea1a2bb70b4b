"""Writers of small Broden-format datasets for tests, with the ground truth they wrote.

`write_broden` makes a random dataset (several pixel layers per cell, image-level
numbers, rows with no data); the returned `FakeBroden` says exactly what is in it, so
tests can compute expected counts independently of the reader.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def write_label_png(path: Path, labels: np.ndarray) -> None:
    """Broden encoding: label number = R + 256 * G."""
    labels = np.asarray(labels, dtype=np.int64)
    rgb = np.zeros((*labels.shape, 3), dtype=np.uint8)
    rgb[..., 0] = labels % 256
    rgb[..., 1] = labels // 256
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path)


def write_rgb(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), "RGB").save(path)


@dataclass
class FakeRow:
    image: str  # name relative to images/
    ih: int
    iw: int
    sh: int
    sw: int
    pixel_layers: list[np.ndarray]  # label numbers [sh, sw] per layer, in index.csv order
    pixel_categories: list[str]  # the category column each layer came from
    image_labels: list[int]  # image-level numbers, in index.csv order
    pixels: np.ndarray  # uint8 [ih, iw, 3] as written
    has_data: bool  # False: the reader must skip this row


@dataclass
class FakeBroden:
    root: Path
    categories: list[str]
    labels: dict[int, tuple[str, str]]  # number -> (name, category)
    rows: list[FakeRow] = field(default_factory=list)

    @property
    def kept(self) -> list[FakeRow]:
        """Rows the reader keeps, in dataset-index order."""
        return [r for r in self.rows if r.has_data]


def write_broden(
    root: Path,
    *,
    n_images: int = 6,
    size: int = 16,
    seg_size: int = 8,
    categories: Sequence[str] = ("object", "part", "scene"),
    image_level: Sequence[str] = ("scene",),
    labels_per_category: int = 3,
    max_layers: int = 2,
    empty_rows: int = 1,
    sizes: Sequence[tuple[int, int]] | None = None,
    seed: int = 0,
) -> FakeBroden:
    """Write a random Broden dataset under `root` and return what it holds.

    Each category gets `labels_per_category` labels numbered from 1 in category order
    (name ``<cat><j>``); a label belongs to one category only. Categories in
    `image_level` hold one or two whole numbers per cell, the others 1..`max_layers`
    label PNGs (``<image>_<cat>_<layer>.png``), each with some unlabelled (0) pixels.
    The last `empty_rows` rows have no data in any category. `sizes` (optional) is a
    cycle of (image size, segmentation size) per image, for mixed-size datasets.
    """
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    categories = list(categories)
    labels: dict[int, tuple[str, str]] = {}
    numbers_of: dict[str, list[int]] = {}
    n = 1
    for cat in categories:
        numbers_of[cat] = list(range(n, n + labels_per_category))
        for j, number in enumerate(numbers_of[cat]):
            labels[number] = (f"{cat}{j}", cat)
        n += labels_per_category
    fake = FakeBroden(root, categories, labels)
    cells_per_row: list[dict[str, str]] = []

    for i in range(n_images):
        isz, ssz = sizes[i % len(sizes)] if sizes else (size, seg_size)
        name = f"img{i:04d}.png"
        pixels = rng.integers(0, 256, size=(isz, isz, 3), dtype=np.uint8)
        write_rgb(root / "images" / name, pixels)
        has_data = i < n_images - empty_rows
        row = FakeRow(name, isz, isz, ssz, ssz, [], [], [], pixels, has_data)
        cells: dict[str, str] = {}
        for cat in categories:
            if not has_data or rng.random() < 0.2:  # some cells are empty even in kept rows
                cells[cat] = ""
                continue
            if cat in image_level:
                picks = sorted(rng.choice(numbers_of[cat], size=int(rng.integers(1, 3)), replace=False).tolist())
                row.image_labels += picks
                cells[cat] = ";".join(str(p) for p in picks)
            else:
                files = []
                for layer in range(int(rng.integers(1, max_layers + 1))):
                    seg = rng.choice([0] + numbers_of[cat], size=(ssz, ssz))
                    fname = f"img{i:04d}_{cat}_{layer}.png"
                    write_label_png(root / "images" / fname, seg)
                    row.pixel_layers.append(seg.astype(np.int64))
                    row.pixel_categories.append(cat)
                    files.append(fname)
                cells[cat] = ";".join(files)
        if has_data and not row.pixel_layers and not row.image_labels:
            # Every cell came out empty: give the row one image-level label so it is kept.
            cat = categories[0]
            row.image_labels.append(numbers_of[cat][0])
            cells[cat] = str(numbers_of[cat][0])
        fake.rows.append(row)
        cells_per_row.append(cells)

    write_csv(
        root / "index.csv",
        ["image", "split", "ih", "iw", "sh", "sw", *categories],
        [
            [r.image, "train", r.ih, r.iw, r.sh, r.sw, *(cells[c] for c in categories)]
            for r, cells in zip(fake.rows, cells_per_row)
        ],
    )
    write_csv(
        root / "category.csv",
        ["name", "first", "last", "count", "frequency"],
        [[c, numbers_of[c][0], numbers_of[c][-1], len(numbers_of[c]), n_images] for c in categories],
    )
    write_csv(
        root / "label.csv",
        ["number", "name", "category", "frequency", "coverage", "syns"],
        [[num, nm, f"{cat}(1)", 1, 0.5, ""] for num, (nm, cat) in sorted(labels.items())],
    )
    for cat in categories:
        write_csv(
            root / f"c_{cat}.csv",
            ["code", "number", "name", "frequency", "coverage"],
            [[k + 1, num, labels[num][0], 1, 0.5] for k, num in enumerate(numbers_of[cat])],
        )
    return fake
