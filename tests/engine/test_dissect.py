"""The dissection driver end to end on a tiny Broden set, the shard API, unlabelled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import (
    DissectOptions, collect_counts, collect_stats, dissect, finalize, merge_counts, merge_stats,
)
from tasks.engine.errors import EngineError, LayerError
from tasks.engine.iou import read_tally
from tests.engine.factories import write_broden
from tests.engine.test_iou import _reference


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 5, 3, stride=2, padding=1), nn.ReLU(),
    ).eval()


@pytest.fixture
def broden(tmp_path):
    fake = write_broden(tmp_path / "broden", n_images=11, size=16, seg_size=8, seed=3)
    return fake, open_dataset(f"broden:{fake.root}")


def _all_activations(model, dataset, layer: str) -> torch.Tensor:
    images = torch.stack([dataset[i].image for i in range(len(dataset))])
    with torch.no_grad():
        return model[: int(layer) + 1](images)


def _options(**kw) -> DissectOptions:
    base = dict(layers=["1", "3"], top_k=3, quantile=0.02, batch_size=4, progress_bar=False)
    return DissectOptions(**(base | kw))


def test_dissect_matches_full_data_statistics_and_writes_a_readable_tally(broden, tmp_path):
    fake, dataset = broden
    model = _tiny_net()
    seen = []
    result = dissect(model, dataset, _options(), tmp_path / "out", progress=lambda s, f: seen.append((s, f)))
    acts = _all_activations(model, dataset, "3")  # [N, 5, 4, 4]
    layer = result.layers["3"]

    expected_t = torch.quantile(acts.transpose(0, 1).reshape(5, -1), 0.98, dim=1)
    assert np.array_equal(layer.thresholds, expected_t.numpy())
    assert np.array_equal(np.load(tmp_path / "out" / "3" / "thresholds.npy"), expected_t.numpy())
    top = acts.flatten(2).amax(2).t().topk(3, dim=1)
    assert np.array_equal(layer.topk_indices, top.indices.numpy())

    # IoU against the per-pixel reference loops on what the factory wrote.
    rows = fake.kept
    cats = {c: k for k, c in enumerate(fake.categories)}
    labcat = {n: cats[c] for n, (_, c) in fake.labels.items()}
    # The reference counts 2 categories; map this dataset's 3 onto a wider A by hand.
    G, inter, _ = _reference(
        acts, expected_t, [np.stack(r.pixel_layers) if r.pixel_layers else np.zeros((0, 8, 8), int) for r in rows],
        [r.image_labels for r in rows], {n: 0 for n in labcat}, 5, "original",
    )
    tally = read_tally(tmp_path / "out" / "3" / "tally.csv")
    assert sorted(r["unit"] for r in tally) == [1, 2, 3, 4, 5]  # 1-based
    assert [r["score"] for r in tally] == sorted((r["score"] for r in tally), reverse=True)
    names = {name: n for n, (name, _) in fake.labels.items()}
    for row in tally:
        u = row["unit"] - 1
        assert row["score"] == pytest.approx(layer.labels[u].score)
        for cat in fake.categories:
            label = row[f"{cat}-label"]
            assert row[f"{cat}-truth"] == G[names[label]]
            assert row[f"{cat}-intersect"] == inter[(u, names[label])]
    best = layer.iou.argmax(axis=1)
    assert [lab.label for lab in layer.labels] == [fake.labels[int(dataset.concepts[b].number)][0] for b in best]

    summary = json.loads((tmp_path / "out" / "3" / "summary.json").read_text())
    detectors = sum(lab.score > 0.04 for lab in layer.labels)
    assert summary["interpretable_units"] == detectors
    assert summary["line"].startswith(f"{detectors}/5 units covering ")
    assert summary["line"].endswith(" concepts with IoU >= 0.04")
    assert (tmp_path / "out" / "3" / "exemplars" / "strips" / "unit_0005.jpg").is_file()
    assert (tmp_path / "out" / layer.exemplars[4][2]).is_file()
    topk_lines = (tmp_path / "out" / "3" / "topk.csv").read_text().splitlines()
    assert topk_lines[0] == "unit,rank,image,score,image_name"
    assert topk_lines[1].startswith(f"1,0,{layer.topk_indices[0, 0]},")
    stages = {s for s, _ in seen}
    assert {"sweep", "counts", "render"} <= stages and max(f for _, f in seen) == pytest.approx(1.0)


def test_shards_collected_and_merged_equal_the_single_sweep(broden, tmp_path):
    _, dataset = broden
    model = _tiny_net()
    opts = _options(iou_rule="original")
    whole = dissect(model, dataset, opts, tmp_path / "whole")
    n = len(dataset)
    # Shards split on batch boundaries (batch_size 4): the same batches give bit-equal
    # activations, so "equal" can mean equal, not close.
    stats = merge_stats([collect_stats(model, dataset, opts, indices=range(4, n)),
                         collect_stats(model, dataset, opts, indices=range(0, 4))])
    single = collect_stats(model, dataset, opts)
    for name in ("1", "3"):
        assert torch.equal(stats["layers"][name]["quantile"]["top"].sort(dim=1).values,
                           single["layers"][name]["quantile"]["top"].sort(dim=1).values)
    counts = merge_counts([collect_counts(model, dataset, opts, stats, indices=range(0, 8)),
                           collect_counts(model, dataset, opts, stats, indices=range(8, n))])
    single_counts = collect_counts(model, dataset, opts, stats)
    for key in ("truth", "intersect", "activation"):
        assert torch.equal(counts["layers"]["3"][key], single_counts["layers"]["3"][key])
    sharded = finalize(model, dataset, opts, stats, counts, tmp_path / "sharded")
    for name in ("1", "3"):
        a, b = whole.layers[name], sharded.layers[name]
        assert np.array_equal(a.thresholds, b.thresholds)
        assert np.array_equal(a.topk_indices, b.topk_indices)
        assert np.array_equal(a.iou, b.iou)
    tally = "3/tally.csv"
    assert (tmp_path / "sharded" / tally).read_text() == (tmp_path / "whole" / tally).read_text()


def test_given_thresholds_replace_the_quantile(broden, tmp_path):
    _, dataset = broden
    given = {"1": np.full(4, 0.1, np.float32), "3": np.full(5, 0.2, np.float32)}
    result = dissect(_tiny_net(), dataset, _options(thresholds=given, render=False), tmp_path / "out")
    assert result.layers["3"].thresholds.tolist() == pytest.approx([0.2] * 5)
    with pytest.raises(EngineError, match="layer 3 have 2 values but the layer has 5 units"):
        dissect(_tiny_net(), dataset, _options(thresholds={"3": np.zeros(2)}), tmp_path / "bad")


def test_an_unlabelled_folder_gets_top_images_thresholds_and_exemplars_only(tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    dataset = open_dataset(f"folder:{folder}", image_size=16)
    result = dissect(_tiny_net(), dataset, _options(layers=["3"]), tmp_path / "out")
    layer = result.layers["3"]
    assert layer.iou is None and layer.labels == []
    assert not (tmp_path / "out" / "3" / "tally.csv").exists()
    assert (tmp_path / "out" / "3" / "thresholds.npy").is_file()
    assert len(layer.strips) == 5
    assert result.skipped_images == ["broken.jpg"]
    summary = json.loads((tmp_path / "out" / "3" / "summary.json").read_text())
    assert summary["labelled"] is False and summary["skipped_images"] == 1


def test_an_unknown_layer_is_refused_naming_the_valid_layers(broden, tmp_path):
    _, dataset = broden
    with pytest.raises(LayerError, match="'4' is not in the model.*layers are 0, 1, 2, 3"):
        dissect(_tiny_net(), dataset, _options(layers=["4"]), tmp_path / "out")


def test_a_shard_whose_statistics_would_not_fit_the_memory_budget_fails_before_reading_an_image(broden):
    _, dataset = broden
    seen = []
    with pytest.raises(EngineError, match="no plan fits a memory budget of 100 B.*run the job whole"):
        collect_stats(_tiny_net(), dataset, _options(memory_budget=100), indices=range(4),
                      progress=lambda s, f: seen.append(s))
    assert seen == []


def test_release_free_memory_hands_freed_heap_pages_back():
    # glibc keeps freed heap pages (allocations under its mmap threshold) resident; the engine trims
    # them after each batch so a long sweep's peak does not creep up. Linux with glibc only.
    import ctypes

    from tasks.engine import collect

    if collect._TRIM is None or not Path("/proc/self/statm").exists():
        pytest.skip("needs glibc's malloc_trim and /proc")

    def resident() -> int:
        return int(Path("/proc/self/statm").read_text().split()[1]) * 4096

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    blocks = [libc.malloc(64 * 1024) for _ in range(1600)]  # 100 MB in heap-sized blocks
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    keep = blocks[-1]  # one live block at the top: the heap cannot simply shrink from its end
    for b in blocks[:-1]:
        libc.free(b)
    before = resident()
    collect.release_free_memory()
    after = resident()
    libc.free(keep)
    assert before - after > 80 * 2**20, (before, after)


@pytest.mark.parametrize("shards", [1, 3])
def test_shards_whose_buffers_overflow_merge_into_the_single_pass_outside_inference_mode(
    tmp_path, shards, pending_at_state
):
    fake = write_broden(tmp_path / "broden", n_images=48, size=16, seg_size=8, seed=5, empty_rows=0)
    dataset = open_dataset(f"broden:{fake.root}")
    model = _tiny_net()
    # One image a batch: few newcomers pass the kept set's floor per batch, so a sweep ends with some
    # still buffered (the spy below checks that this data does take that path).
    opts = _options(quantile=0.005, iou_rule="lite", batch_size=1)
    whole = dissect(model, dataset, opts, tmp_path / "whole")
    bounds = np.linspace(0, len(dataset), shards + 1).astype(int)
    parts = [collect_stats(model, dataset, opts, indices=range(a, b)) for a, b in zip(bounds[:-1], bounds[1:])]
    assert any(dropped and pending and not inference for dropped, pending, inference in pending_at_state), (
        "the test data must leave newcomers buffered in an overflowed set when a shard's state is read"
    )
    stats = merge_stats(parts)
    counts = merge_counts([collect_counts(model, dataset, opts, stats, indices=range(a, b))
                           for a, b in zip(bounds[:-1], bounds[1:])])
    sharded = finalize(model, dataset, opts, stats, counts, tmp_path / "sharded")
    for name in ("1", "3"):
        with torch.no_grad():  # image by image, as the sweep's batches of one round them
            acts = torch.cat([model[: int(name) + 1](dataset[i].image[None]) for i in range(len(dataset))])
        expected = torch.quantile(acts.transpose(0, 1).reshape(acts.shape[1], -1), 1 - 0.005, dim=1)
        assert np.array_equal(sharded.layers[name].thresholds, expected.numpy())
        assert np.array_equal(whole.layers[name].thresholds, expected.numpy())
        assert np.array_equal(whole.layers[name].topk_indices, sharded.layers[name].topk_indices)
        assert (tmp_path / "sharded" / name / "tally.csv").read_text() == (
            tmp_path / "whole" / name / "tally.csv"
        ).read_text()
