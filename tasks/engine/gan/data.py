"""Mixture-of-digits canvases and their exact digit masks as tensors, for GAN and segmenter training.

Reads a folder written by ``mixture.make_mixture`` (index.csv, images/NNNNN.png and
images/NNNNN_object.png with label number = digit + 1 in the red channel).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import DatasetError
from ..mixture import CATEGORY, MixtureSpec, make_mixture


@dataclass
class Canvases:
    images: torch.Tensor  # uint8 [N, H, W] grey
    labels: torch.Tensor  # uint8 [N, H, W]: 0 background, d + 1 digit d

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def as_input(self, pick: torch.Tensor | slice) -> torch.Tensor:
        """float [B, 1, H, W] in [-1, 1], the generator's output range."""
        return _as_input(self.images[pick])

    def as_layers(self, pick: torch.Tensor | slice) -> torch.Tensor:
        """float [B, 10, H, W] in [-1, 1]: layer d holds the canvas's pixels that its exact mask gives to digit d
        (-1 elsewhere), so the maximum over the layers is the canvas again."""
        images, labels = self.images[pick].float().div(255.0), self.labels[pick].long()
        digits = torch.arange(1, 11, device=labels.device)[None, :, None, None]
        return (images[:, None] * (labels[:, None] == digits)).mul(2.0).sub(1.0)


def _csv_rows(path: Path, missing: str) -> list[dict[str, str]]:
    """The rows of a mixture folder's CSV file; DatasetError ``missing`` when there is none."""
    if not path.is_file():
        raise DatasetError(missing)
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _as_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, H, W] -> float [B, 1, H, W] in [-1, 1], the generator's output range."""
    return images.float().div(127.5).sub(1.0)[:, None]


def load_canvases(data_dir: str | Path, limit: int | None = None) -> Canvases:
    """Every picture and its digit label map; DatasetError naming the file when one is off."""
    root = Path(data_dir)
    index = root / "index.csv"
    rows = _csv_rows(index, f"{root} has no index.csv; make the canvases first, e.g. `python -m tasks.engine gan "
                            f"train --data {root} --make 3000 ...` (32 px, digits sized for a generator).")
    if not rows or CATEGORY not in rows[0]:
        raise DatasetError(f"{index} has no '{CATEGORY}' column of digit masks; it is not a mixture dataset.")
    rows = rows[:limit] if limit else rows
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []
    for row in rows:
        try:
            pic = np.asarray(Image.open(root / "images" / row["image"]).convert("RGB"))[..., 0]
            lab = np.asarray(Image.open(root / "images" / row[CATEGORY]).convert("RGB"))[..., 0]
        except (OSError, KeyError) as exc:
            raise DatasetError(f"cannot read {row.get('image')} or its mask in {root}: {exc}") from exc
        if pic.shape != lab.shape or (images and pic.shape != images[0].shape):
            raise DatasetError(f"{row['image']} in {root} has size {pic.shape}; every canvas and mask must share one "
                               f"size.")
        images.append(pic)
        labels.append(lab)
    return Canvases(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(labels)))


def make_canvases(out_dir: str | Path, *, n_images: int, canvas: int = 32, split: str = "train", seed: int = 0,
                  source: str = "digits") -> Path:
    """A mixture dataset sized for generators (digits scaled to ~45% of the canvas), reused
    when ``out_dir`` already holds one with the same settings."""
    out_dir = Path(out_dir)
    meta = out_dir / "meta.json"
    if meta.is_file():
        import json

        m = json.loads(meta.read_text())
        if (m.get("n_images"), m.get("canvas"), m.get("split"), m.get("seed"), m.get("source")) == (
            n_images, canvas, split, seed, source):
            return out_dir
    # Digits at ~45% of the canvas leave room for two of them side by side, as on 64 px / 28 px.
    return make_mixture(out_dir, n_images=n_images, seed=seed, split=split, overwrite=True,
                        spec=MixtureSpec(source=source, canvas=canvas, digit_size=max(8, round(canvas * 0.45))))


@dataclass
class DigitCrops:
    images: torch.Tensor  # uint8 [N, 32, 32]: one digit's own pixels (its exact mask), the rest 0
    digits: torch.Tensor  # long [N]

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def as_input(self, pick: torch.Tensor | slice) -> torch.Tensor:
        """float [B, 1, 32, 32] in [-1, 1], what ``SpriteGenerator.render_sprites`` draws (times 2, minus 1)."""
        return _as_input(self.images[pick])


def digit_crops(data_dir: str | Path, canvases: Canvases, at: int) -> DigitCrops:
    """Every digit of every canvas alone: its pixels under its exact mask, in a 32 px crop whose pixel
    (``at``, ``at``) is the digit's top-left corner (sources.csv), so crops line up as a sprite is drawn."""
    root = Path(data_dir)
    path = root / "sources.csv"
    rows = _csv_rows(path, f"{root} has no sources.csv (the digits' corners); make the canvases again with "
                           f"`python -m tasks.engine gan train --data {root} --make 3000 ...`.")
    if len(rows) < len(canvases):
        raise DatasetError(f"{path} lists {len(rows)} canvases; index.csv lists {len(canvases)}.")
    size, pad = int(canvases.images.shape[-1]), 32
    crops, digits = [], []
    for i, row in enumerate(rows[: len(canvases)]):
        try:
            shown = [int(v) for v in row["digits"].split(";")]
            corners = [tuple(int(v) for v in c.split()) for c in row["corners"].split(";")]
        except (KeyError, ValueError) as exc:
            raise DatasetError(f"{path} row {i + 2} does not give the digits and their corners: {exc}") from exc
        if len(shown) != len(corners) or any(len(c) != 2 or not all(0 <= v < size for v in c) for c in corners):
            raise DatasetError(f"{path} row {i + 2} gives {len(shown)} digits but corners {row['corners']!r}.")
        for digit, (r, c) in zip(shown, corners):
            layer = canvases.images[i] * (canvases.labels[i] == digit + 1)
            padded = torch.nn.functional.pad(layer, (pad, pad, pad, pad))
            top, left = r + pad - at, c + pad - at
            crops.append(padded[top : top + 32, left : left + 32])
            digits.append(digit)
    return DigitCrops(torch.stack(crops), torch.tensor(digits, dtype=torch.long))
