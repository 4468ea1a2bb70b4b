"""The Broden reader and the image-folder dataset, on small datasets written by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.engine.datasets import (
    NETDISSECT_MEAN,
    NETDISSECT_STD,
    BrodenDataset,
    ImageFolderDataset,
    make_loader,
    open_dataset,
)
from tasks.engine.errors import DatasetError
from tests.engine.factories import write_broden, write_csv, write_label_png, write_rgb


def test_it_reads_every_pixel_layer_and_image_level_number_as_written(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=8, max_layers=3, seed=1)
    ds = open_dataset(f"broden:{tmp_path}", mean=NETDISSECT_MEAN, std=NETDISSECT_STD)
    assert len(ds) == len(fake.kept)
    assert any(len(r.pixel_layers) > 1 for r in fake.kept), "the fixture should hold several layers in a cell"
    for i, row in enumerate(fake.kept):
        item = ds[i]
        assert ds.image_name(i) == row.image
        assert item.pixel_labels.shape == (len(row.pixel_layers), row.sh, row.sw)
        for layer, expected in zip(item.pixel_labels, row.pixel_layers):
            assert np.array_equal(layer.numpy(), expected)
        assert item.image_labels.tolist() == row.image_labels
        assert item.target == -1


def test_it_skips_rows_with_no_data_in_any_selected_category(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=6, empty_rows=2)
    ds = open_dataset(tmp_path, mean=NETDISSECT_MEAN, std=NETDISSECT_STD)
    assert [ds.image_name(i) for i in range(len(ds))] == [r.image for r in fake.rows[:4]]


def test_selecting_only_image_level_categories_drops_rows_without_them(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=10, seed=3)
    ds = BrodenDataset(tmp_path, categories=["scene"])
    expected = [r.image for r in fake.kept if any(fake.labels[n][1] == "scene" for n in r.image_labels)]
    assert [ds.image_name(i) for i in range(len(ds))] == expected
    assert {c.category for c in ds.concepts} == {"scene"}


def test_it_normalises_like_netdissect_lite(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=2, empty_rows=0)
    ds = open_dataset(tmp_path, mean=NETDISSECT_MEAN, std=NETDISSECT_STD)
    rgb = fake.rows[0].pixels.astype(np.float64)
    expected = (rgb - np.array([124.6901, 118.6897, 109.5388])) / 57.12
    got = ds[0].image.permute(1, 2, 0).numpy()
    assert np.allclose(got, expected, atol=1e-5)


def _tiny_broden(root: Path, c_object: list[list[object]], c_part: list[list[object]]) -> None:
    """Two categories, labels 1 (cat) and 2 (wheel); one image whose cell holds both."""
    write_rgb(root / "images" / "a.png", np.zeros((4, 4, 3)))
    write_label_png(root / "images" / "a_obj.png", np.array([[1, 2], [0, 1]]))
    write_csv(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", "object", "part"],
              [["a.png", "train", 4, 4, 2, 2, "a_obj.png", ""]])
    write_csv(root / "category.csv", ["name", "first", "last", "count", "frequency"],
              [["object", 1, 2, 2, 1], ["part", 1, 2, 2, 1]])
    write_csv(root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
              [[1, "cat", "object(1);part(1)", 1, 1, ""], [2, "wheel", "object(1);part(1)", 1, 1, ""]])
    write_csv(root / "c_object.csv", ["code", "number", "name", "frequency", "coverage"], c_object)
    write_csv(root / "c_part.csv", ["code", "number", "name", "frequency", "coverage"], c_part)


def test_a_labels_primary_category_is_the_one_with_the_largest_coverage(tmp_path: Path) -> None:
    _tiny_broden(tmp_path, [[1, 1, "cat", 1, 0.9], [2, 2, "wheel", 1, 0.1]],
                 [[1, 1, "cat", 1, 0.2], [2, 2, "wheel", 1, 0.7]])
    ds = BrodenDataset(tmp_path)
    assert {c.name: c.category for c in ds.concepts} == {"cat": "object", "wheel": "part"}


def test_a_coverage_tie_goes_to_the_later_category_in_category_csv(tmp_path: Path) -> None:
    _tiny_broden(tmp_path, [[1, 1, "cat", 1, 0.5], [2, 2, "wheel", 1, 0.5]],
                 [[1, 1, "cat", 1, 0.5], [2, 2, "wheel", 1, 0.4]])
    ds = BrodenDataset(tmp_path)
    assert {c.name: c.category for c in ds.concepts} == {"cat": "part", "wheel": "object"}
    assert ds.label_to_category().tolist() == [-1, 1, 0]


def test_a_label_png_of_the_wrong_size_is_an_error_naming_the_file(tmp_path: Path) -> None:
    write_broden(tmp_path, n_images=3, size=8, seg_size=4, empty_rows=0, seed=2)
    ds = BrodenDataset(tmp_path)
    bad = next(i for i in range(len(ds)) if ds._rows[i][3])  # a row with a label PNG
    png = ds._rows[bad][3][0]
    write_label_png(tmp_path / "images" / png, np.ones((5, 4)))
    with pytest.raises(DatasetError, match=png):
        ds[bad]


def test_a_corrupt_or_truncated_image_is_skipped_counted_and_the_run_goes_on(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=6, empty_rows=0, size=32, seg_size=8)
    images = tmp_path / "images"
    (images / fake.rows[1].image).write_bytes(b"this is not a png")
    data = (images / fake.rows[3].image).read_bytes()
    (images / fake.rows[3].image).write_bytes(data[: len(data) // 2])
    ds = open_dataset(tmp_path, mean=NETDISSECT_MEAN, std=NETDISSECT_STD)
    assert ds[1] is None and ds[3] is None
    seen = [int(i) for batch in make_loader(ds, batch_size=4) for i in batch.indices]
    assert seen == [0, 2, 4, 5]
    assert ds.skipped == [fake.rows[1].image, fake.rows[3].image]
    for _batch in make_loader(ds, batch_size=4):  # a second pass does not count them twice
        pass
    assert len(ds.skipped) == 2


def test_a_dataset_with_no_usable_row_is_an_error(tmp_path: Path) -> None:
    write_broden(tmp_path, n_images=3, empty_rows=3)
    with pytest.raises(DatasetError, match="index.csv"):
        open_dataset(tmp_path, mean=NETDISSECT_MEAN, std=NETDISSECT_STD)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty"):
        open_dataset(f"folder:{tmp_path / 'empty'}", mean=NETDISSECT_MEAN, std=NETDISSECT_STD)


def test_a_missing_index_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="index.csv"):
        BrodenDataset(tmp_path)


def test_images_of_different_sizes_are_batched_by_size_and_none_is_lost(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=9, empty_rows=0, sizes=[(8, 4), (12, 6), (8, 4)])
    ds = BrodenDataset(tmp_path)
    seen: list[int] = []
    for batch in make_loader(ds, batch_size=4):
        sizes = {(fake.rows[int(i)].ih, fake.rows[int(i)].sh) for i in batch.indices}
        assert len(sizes) == 1
        assert batch.images.shape[-1] == sizes.pop()[0]
        seen += batch.indices.tolist()
    assert sorted(seen) == list(range(9))


def test_a_batch_pads_missing_layers_and_image_labels_with_zero(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=6, empty_rows=0, max_layers=3, seed=5)
    ds = BrodenDataset(tmp_path)
    batch = next(iter(make_loader(ds, batch_size=6)))
    most = max(len(r.pixel_layers) for r in fake.rows)
    assert batch.pixel_labels.shape == (6, most, 8, 8)
    for k, row in enumerate(fake.rows):
        assert torch.all(batch.pixel_labels[k, len(row.pixel_layers):] == 0)
        labels = batch.image_labels[k]
        assert labels[labels > 0].tolist() == row.image_labels


def test_image_level_presence_marks_concepts_seen_anywhere_in_the_image(tmp_path: Path) -> None:
    fake = write_broden(tmp_path, n_images=7, seed=4)
    ds = BrodenDataset(tmp_path)
    numbers = [c.number for c in ds.concepts]
    assert numbers == sorted(fake.labels)
    expected = np.zeros((len(fake.kept), len(numbers)), dtype=bool)
    for i, row in enumerate(fake.kept):
        present = set(row.image_labels)
        for layer in row.pixel_layers:
            present |= set(np.unique(layer).tolist())
        for j, number in enumerate(numbers):
            expected[i, j] = number in present
    assert np.array_equal(ds.image_level_presence(), expected)


def test_a_class_column_gives_targets_and_meta_json_gives_class_names(tmp_path: Path) -> None:
    write_rgb(tmp_path / "images" / "a.png", np.zeros((4, 4, 3)))
    write_rgb(tmp_path / "images" / "b.png", np.zeros((4, 4, 3)))
    write_csv(tmp_path / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", "object", "class"],
              [["a.png", "train", 4, 4, 4, 4, "1", 1], ["b.png", "train", 4, 4, 4, 4, "1", 0]])
    write_csv(tmp_path / "category.csv", ["name", "first", "last", "count", "frequency"], [["object", 1, 1, 1, 2]])
    write_csv(tmp_path / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
              [[1, "x", "object(2)", 2, 1, ""]])
    (tmp_path / "meta.json").write_text('{"class_names": ["no", "yes"]}')
    ds = BrodenDataset(tmp_path)
    assert ds.targets().tolist() == [1, 0]
    assert ds.class_names == ["no", "yes"]
    assert [ds[0].target, ds[1].target] == [1, 0]


def test_a_folder_dataset_finds_images_recursively_sorted_and_resizes_them(tmp_path: Path) -> None:
    for name in ["b/z.jpg", "a.png", "b/c.webp", "notes.txt", "b/skip.gif"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith(".txt"):
            path.write_text("hi")
        else:
            Image.new("RGB", (30, 20), (255, 0, 0)).save(path)
    ds = open_dataset(f"folder:{tmp_path}", mean=(0, 0, 0), std=(1, 1, 1), image_size=16)
    assert isinstance(ds, ImageFolderDataset)
    assert [ds.image_name(i) for i in range(len(ds))] == ["a.png", "b/c.webp", "b/z.jpg"]
    item = ds[0]
    assert item.image.shape == (3, 16, 16)
    assert torch.allclose(item.image[:, 8, 8], torch.tensor([1.0, 0.0, 0.0]), atol=0.02)
    assert item.pixel_labels.shape[0] == 0 and item.image_labels.numel() == 0
    assert ds.image_level_presence() is None and ds.targets() is None and ds.concepts == []
    batch = next(iter(make_loader(ds, batch_size=8)))
    assert batch.images.shape == (3, 3, 16, 16)


def test_a_bare_path_is_broden_when_it_holds_index_csv(tmp_path: Path) -> None:
    write_broden(tmp_path / "b", n_images=2, empty_rows=0)
    assert isinstance(open_dataset(tmp_path / "b", mean=NETDISSECT_MEAN, std=NETDISSECT_STD), BrodenDataset)
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(f"broden:{tmp_path / 'nowhere'}", mean=NETDISSECT_MEAN, std=NETDISSECT_STD)


def test_make_loader_can_take_one_shard_of_indices(tmp_path: Path) -> None:
    write_broden(tmp_path, n_images=8, empty_rows=0)
    ds = BrodenDataset(tmp_path)
    loader = make_loader(ds, batch_size=3, indices=[5, 1, 6])
    assert [b.indices.tolist() for b in loader] == [[5, 1, 6]]
