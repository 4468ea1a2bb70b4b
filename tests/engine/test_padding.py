"""Pictures padded to one size decode to the same pixels, whatever their format and padding size."""
import io

import numpy as np
import pytest
from PIL import Image

from tasks.engine.padding import pad_to_common_size, padded


def picture(path, fmt, seed, size=48):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, (size, size, 3), dtype=np.uint8)
    if seed % 2:
        pixels[:] = 10  # a nearly flat picture, like a sentinel: a much smaller file
    Image.fromarray(pixels).save(path, format=fmt)
    return path


def pixels(path):
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.mark.parametrize("fmt, suffix", [("JPEG", "jpg"), ("PNG", "png")])
def test_a_set_of_pictures_ends_up_one_size_with_the_same_pixels(tmp_path, fmt, suffix):
    paths = [picture(tmp_path / f"p{i}.{suffix}", fmt, i) for i in range(6)]
    before = [pixels(p) for p in paths]
    assert len({p.stat().st_size for p in paths}) > 1
    size = pad_to_common_size(paths)
    assert {p.stat().st_size for p in paths} == {size}
    for path, original in zip(paths, before):
        assert np.array_equal(pixels(path), original)


@pytest.mark.parametrize("amount", [4, 5, 65536, 65537, 65538, 65539, 65540, 65541, 200_000])
def test_jpeg_padding_of_any_size_is_exact_and_decodes(tmp_path, amount):
    raw = picture(tmp_path / "p.jpg", "JPEG", 2).read_bytes()
    grown = padded(raw, len(raw) + amount)
    assert len(grown) == len(raw) + amount
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(grown)).convert("RGB")),
                          np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))


def test_too_little_room_is_refused_rather_than_corrupting(tmp_path):
    raw = picture(tmp_path / "p.png", "PNG", 2).read_bytes()
    with pytest.raises(ValueError):
        padded(raw, len(raw) + 5)
