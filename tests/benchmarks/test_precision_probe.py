"""The precision probe's reading of the masks: which pictures have digits whose strokes touch."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.precision_probe import touching


def _mask(path: Path, strokes: dict[int, list[tuple[int, int]]]) -> None:
    rgb = np.zeros((16, 16, 3), dtype=np.uint8)
    for label, pixels in strokes.items():
        for r, c in pixels:
            rgb[r, c, 0] = label
    Image.fromarray(rgb, "RGB").save(path)


def test_digits_touch_when_their_strokes_are_within_one_pixel_including_diagonals(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    _mask(tmp_path / "images" / "00000_object.png", {1: [(2, 2), (2, 3)], 5: [(3, 4)]})  # diagonal neighbour
    _mask(tmp_path / "images" / "00001_object.png", {1: [(2, 2)], 5: [(2, 4)]})  # one empty pixel between
    _mask(tmp_path / "images" / "00002_object.png", {3: [(8, 8), (8, 9)]})  # a single digit
    _mask(tmp_path / "images" / "00003_object.png", {2: [(0, 0)], 7: [(15, 15)], 9: [(0, 1)]})  # 2 and 9 touch
    assert touching(tmp_path, 4).tolist() == [True, False, False, True]
