"""Exemplar pictures: NetDissect overlay, outline, strips, and the per-unit files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from tasks.engine.render import Pictures, image_mask, outline, overlay, render_layer, strip


def test_overlay_keeps_the_mask_and_dims_the_rest_to_twenty_percent():
    image = np.array([[[100, 200, 255], [10, 20, 30]]], dtype=np.uint8)
    mask = np.array([[True, False]])
    out = overlay(image, mask)
    # image * (0.2 + 0.8 * mask): inside unchanged, outside 10*0.2 = 2, 20*0.2 = 4, 30*0.2 = 6.
    assert out.tolist() == [[[100, 200, 255], [2, 4, 6]]]


def test_mask_is_the_bilinear_upsample_above_the_threshold():
    fmap = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    expected = F.interpolate(fmap[None, None], size=(6, 6), mode="bilinear", align_corners=False)[0, 0] > 1.5
    assert np.array_equal(image_mask(fmap, (6, 6), 1.5), expected.numpy())


def test_outline_marks_only_the_border_of_the_region():
    image = np.zeros((9, 9, 3), dtype=np.uint8)
    mask = np.zeros((9, 9), dtype=bool)
    mask[2:7, 2:7] = True
    out = outline(image, mask, width=1)
    yellow = (out == [255, 255, 0]).all(axis=2)
    assert yellow[2, 2] and yellow[2, 4] and yellow[6, 6]  # the border ring
    assert not yellow[4, 4] and not yellow[0, 0]  # not the inside, not the outside


def test_strip_puts_pictures_in_a_row_with_three_white_pixels_between():
    a = np.zeros((4, 5, 3), dtype=np.uint8)
    b = np.full((4, 2, 3), 7, dtype=np.uint8)
    s = strip([a, b, a])
    assert s.shape == (4, 5 + 3 + 2 + 3 + 5, 3)
    assert (s[:, 5:8] == 255).all() and (s[:, 8:10] == 7).all() and (s[:, 10:13] == 255).all()


def test_render_layer_writes_rank_pictures_plain_images_and_strips(tmp_path):
    rgbs = {i: Image.fromarray(np.full((8, 8, 3), 50 * i + 40, dtype=np.uint8)) for i in range(3)}
    maps = {0: torch.tensor([[5.0, 0.0], [0.0, 0.0]]), 1: torch.zeros(2, 2), 2: torch.ones(2, 2) * 9}
    topk = np.array([[2, 0], [0, 1]])
    done = render_layer(
        rgbs.__getitem__, lambda u, r, index: maps[index], topk, np.array([1.0, 1.0]), tmp_path, "layer4",
        pictures=Pictures(render_k=2, fmt="png"),
    )
    assert done.exemplars[0] == ["layer4/exemplars/unit_0001/rank_00.png", "layer4/exemplars/unit_0001/rank_01.png"]
    assert done.plain[1] == ["layer4/exemplars/plain/image_000000.png", "layer4/exemplars/plain/image_000001.png"]
    assert done.strips[1] == "layer4/exemplars/strips/unit_0002.png"
    # Image 2's map is 9 everywhere (> 1): the whole picture stays bright.
    assert (np.asarray(Image.open(tmp_path / done.exemplars[0][0])) == 140).all()
    # Image 1's map is 0 (< 1): everything dimmed to int(90 * 0.2) = 18.
    assert (np.asarray(Image.open(tmp_path / done.exemplars[1][1])) == 18).all()
    assert (np.asarray(Image.open(tmp_path / done.plain[1][1])) == 90).all()
    assert Image.open(tmp_path / done.strips[0]).size == (8 + 3 + 8, 8)


def test_an_unknown_highlight_style_is_refused(tmp_path):
    with pytest.raises(ValueError, match="overlay, outline"):
        render_layer(lambda i: None, lambda u, r, i: None, np.zeros((1, 1), int), np.zeros(1), tmp_path, "l",
                     pictures=Pictures(render_k=1, style="glow"))
