"""The mixture-of-digits generator: masks, classes, splits, determinism, sources."""

from __future__ import annotations

import csv
import gzip
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks.engine.datasets import BrodenDataset
from tasks.engine.errors import DatasetError
from tasks.engine.mixture import MixtureSpec, load_digit_source, make_mixture


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _sources(root: Path) -> list[dict[str, str]]:
    with (root / "sources.csv").open() as f:
        return list(csv.DictReader(f))


def _targets(root: Path) -> list[int]:
    with (root / "index.csv").open() as f:
        return [int(r["class"]) for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def mixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixture(tmp_path_factory.mktemp("mix") / "train", n_images=80, seed=3)


def test_masks_cover_exactly_the_digit_pixels(mixture: Path) -> None:
    for k in range(80):
        picture = _read(mixture / "images" / f"{k:05d}.png")
        mask = _read(mixture / "images" / f"{k:05d}_object.png")
        assert picture.shape == (64, 64, 3) and mask.shape == (64, 64, 3)
        assert np.array_equal(picture[..., 0], picture[..., 1]) and np.array_equal(picture[..., 0], picture[..., 2])
        assert np.all(mask[..., 1:] == 0)
        assert np.array_equal(mask[..., 0] > 0, picture[..., 0] > 0)


def test_each_picture_is_its_source_digits_pasted_at_the_recorded_corners(mixture: Path) -> None:
    pool = load_digit_source("digits")
    for k, row in enumerate(_sources(mixture)[:30]):
        picture = np.zeros((64, 64), dtype=np.int64)
        mask = np.zeros((64, 64), dtype=np.int64)
        digits = [int(d) for d in row["digits"].split(";")]
        ids = [int(s) for s in row["source_ids"].split(";")]
        corners = [tuple(int(v) for v in c.split()) for c in row["corners"].split(";")]
        for digit, source_id, (r, c) in zip(digits, ids, corners):
            assert pool.labels[source_id] == digit
            stroke = pool.images[source_id].astype(np.int64)
            for y, x in zip(*np.nonzero(stroke)):  # brighter wins, ties to the later digit
                if stroke[y, x] >= picture[r + y, c + x]:
                    picture[r + y, c + x] = stroke[y, x]
                    mask[r + y, c + x] = digit + 1
        assert np.array_equal(_read(mixture / "images" / f"{k:05d}.png")[..., 0], picture)
        assert np.array_equal(_read(mixture / "images" / f"{k:05d}_object.png")[..., 0], mask)


def test_the_class_is_the_unordered_pair_of_the_two_different_digits(mixture: Path) -> None:
    meta = json.loads((mixture / "meta.json").read_text())
    pairs = list(itertools.combinations(range(10), 2))
    assert meta["class_names"] == [f"{a}+{b}" for a, b in pairs] and len(pairs) == 45
    for target, row in zip(_targets(mixture), _sources(mixture)):
        digits = sorted(int(d) for d in row["digits"].split(";"))
        assert tuple(digits) == pairs[target]


def test_the_dataset_reads_back_as_broden_with_digit_concepts_and_classes(mixture: Path) -> None:
    ds = BrodenDataset(mixture)
    assert [(c.number, c.name, c.category) for c in ds.concepts] == [(d + 1, str(d), "object") for d in range(10)]
    assert ds.targets().tolist() == _targets(mixture)
    assert len(ds.class_names) == 45
    presence = ds.image_level_presence()
    for i, row in enumerate(_sources(mixture)):
        assert sorted(np.flatnonzero(presence[i]).tolist()) == sorted(int(d) for d in row["digits"].split(";"))


def test_train_and_val_never_share_a_source_digit(tmp_path: Path) -> None:
    train = make_mixture(tmp_path / "train", n_images=300, seed=0, split="train")
    val = make_mixture(tmp_path / "val", n_images=300, seed=0, split="val")
    ids = {}
    for name, root in (("train", train), ("val", val)):
        ids[name] = {int(s) for row in _sources(root) for s in row["source_ids"].split(";")}
    assert ids["train"] and ids["val"]
    assert not ids["train"] & ids["val"]


def _digest(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_same_seed_writes_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    a = _digest(make_mixture(tmp_path / "a", n_images=12, seed=7))
    b = _digest(make_mixture(tmp_path / "b", n_images=12, seed=7))
    c = _digest(make_mixture(tmp_path / "c", n_images=12, seed=8))
    assert a == b
    assert a["images/00000.png"] != c["images/00000.png"]


def test_redundant_digits_leave_28_classes_over_the_other_digits(tmp_path: Path) -> None:
    root = make_mixture(tmp_path / "r", n_images=120, seed=1, spec=MixtureSpec(redundant=(8, 9)))
    meta = json.loads((root / "meta.json").read_text())
    pairs = list(itertools.combinations(range(8), 2))
    assert meta["class_names"] == [f"{a}+{b}" for a, b in pairs] and len(pairs) == 28
    extras = 0
    for target, row in zip(_targets(root), _sources(root)):
        digits = [int(d) for d in row["digits"].split(";")]
        assert tuple(sorted(d for d in digits if d < 8)) == pairs[target]
        extras += len([d for d in digits if d >= 8])
    assert 20 < extras < 100  # shown at random, about half the time


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_an_idx_source_is_read_as_mnist_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 28, 28)).astype(np.uint8)
    labels = np.arange(40) % 10
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    pool = load_digit_source(f"idx:{tmp_path}", threshold=0.5)
    assert np.array_equal(pool.labels, labels)
    assert np.array_equal(pool.images, np.where(images > 128, images, 0))
    root = make_mixture(tmp_path / "out", n_images=5, seed=0, spec=MixtureSpec(source=f"idx:{tmp_path}"))
    assert len(_targets(root)) == 5


def test_a_failed_mnist_download_says_to_use_a_local_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DatasetError, match="digits.*idx:PATH"):
        make_mixture(tmp_path / "m", n_images=2, spec=MixtureSpec(source=f"mnist:{tmp_path / 'cache'}"))


def test_it_refuses_to_write_into_a_folder_holding_other_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        make_mixture(tmp_path, n_images=2)


def test_a_missing_idx_path_is_named_as_missing(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"IDX path .*nowhere does not exist"):
        load_digit_source(f"idx:{tmp_path / 'nowhere'}", threshold=0.5)


def test_idx_files_named_the_mirrors_way_with_a_dot_are_found(tmp_path: Path) -> None:
    # Several MNIST mirrors ship "train-images.idx3-ubyte" rather than "train-images-idx3-ubyte".
    images = np.full((3, 28, 28), 200, dtype=np.uint8)
    _write_idx(tmp_path / "train-images.idx3-ubyte.gz", images)
    _write_idx(tmp_path / "train-labels.idx1-ubyte.gz", np.array([4, 5, 6]))
    pool = load_digit_source(f"idx:{tmp_path}", threshold=0.5)
    assert pool.labels.tolist() == [4, 5, 6]
