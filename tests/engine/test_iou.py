"""IoU counts, labels and tally.csv: hand-worked examples and a slow per-pixel reference."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tasks.engine.datasets import Concept
from tasks.engine.iou import IouCounts, IouTable, Vocabulary, read_tally, tally_columns, write_tally

CATS = ["object", "scene"]
CONCEPTS = [
    Concept(1, "dog", "object"),
    Concept(2, "cat", "object"),
    Concept(3, "beach", "scene"),
    Concept(4, "forest", "scene"),
]


def _hand_worked_counts(rule: str) -> IouTable:
    # Maps and segmentations are both 2x2, so the bilinear upsample is the identity and the
    # masks can be read off by eye with T = 2 for both units.
    acts = torch.tensor(
        [
            [[[5.0, 5.0], [0.0, 0.0]], [[3.0, 3.0], [3.0, 3.0]]],  # image 0: unit 0, unit 1
            [[[0.0, 0.0], [4.0, 4.0]], [[0.0, 3.0], [0.0, 0.0]]],  # image 1
        ]
    )
    pixel = torch.tensor([[[[1, 1], [2, 0]]], [[[0, 0], [0, 2]]]])  # one label layer each
    image_labels = [[3], [4]]  # image 0 is a beach, image 1 a forest (image-level, scene)
    counts = IouCounts(2, Vocabulary.from_concepts(CONCEPTS, CATS), rule)
    counts.add(acts, torch.tensor([2.0, 2.0]), pixel, image_labels)
    return counts.table()


def test_hand_worked_example_under_the_lite_rule():
    # G: dog 2 px, cat 1+1 = 2 px, beach 4 (image-level: sh*sw), forest 4.
    # unit 0: masks img0 {(0,0),(0,1)} (dog, dog), img1 {(1,0),(1,1)} (0, cat); |M| = 2, 2.
    #   I: dog 2, cat 1, beach 2 (img0 |M|), forest 2 (img1 |M|).
    #   A lite: object: img0 overlaps dog (+2), img1 overlaps cat (+2) = 4;
    #           scene: both images hold an image-level scene label: 2 + 2 = 4.
    #   IoU: dog 2/(4+2-2) = 0.5, cat 1/(4+2-1) = 0.2, beach 2/(4+4-2) = 1/3, forest 1/3.
    # unit 1: masks img0 all 4 px, img1 {(0,1)} (label 0); |M| = 4, 1.
    #   I: dog 2, cat 1, beach 4, forest 1.
    #   A lite: object: img0 (+4), img1 overlaps no object pixel (+0) = 4; scene: 4 + 1 = 5.
    #   IoU: dog 2/(4+2-2) = 0.5, cat 1/(4+2-1) = 0.2, beach 4/(5+4-4) = 0.8, forest 1/(5+4-1) = 0.125.
    table = _hand_worked_counts("lite")
    assert table.truth.tolist() == [2, 2, 4, 4]
    assert table.intersect.tolist() == [[2, 1, 2, 2], [2, 1, 4, 1]]
    assert table.activation.tolist() == [[4, 4], [4, 5]]
    np.testing.assert_allclose(table.iou, [[0.5, 0.2, 1 / 3, 1 / 3], [0.5, 0.2, 0.8, 0.125]], rtol=1e-9)
    unit0, unit1 = table.labels()
    assert (unit0.label, unit0.category, unit0.score) == ("dog", "object", pytest.approx(0.5))
    assert (unit1.label, unit1.category, unit1.score) == ("beach", "scene", pytest.approx(0.8))
    # Equal scene IoU for beach and forest: the lower label number wins.
    assert unit0.per_category == {"object": ("dog", pytest.approx(0.5)), "scene": ("beach", pytest.approx(1 / 3))}


def test_hand_worked_example_under_the_original_rule():
    # Only unit 1's object denominator changes: image 1 holds a cat pixel somewhere, so all
    # of unit 1's mask there (1 px) counts although it misses the cat: A[1, object] = 5.
    #   dog 2/(5+2-2) = 0.4, cat 1/(5+2-1) = 1/6; scene is unchanged (both images have one).
    table = _hand_worked_counts("original")
    assert table.activation.tolist() == [[4, 4], [5, 5]]
    np.testing.assert_allclose(table.iou, [[0.5, 0.2, 1 / 3, 1 / 3], [0.4, 1 / 6, 0.8, 0.125]], rtol=1e-9)


def _reference(acts, thresholds, pixel_layers, image_labels, labcat, n_units, rule):
    """Obviously correct counts: Python loops over images, units and pixels."""
    G, inter = defaultdict(int), defaultdict(int)
    A = np.zeros((n_units, 2), dtype=np.int64)
    for n, layers in enumerate(pixel_layers):
        sh, sw = layers.shape[1:]
        for layer in layers:
            for y in range(sh):
                for x in range(sw):
                    if layer[y, x] > 0:
                        G[int(layer[y, x])] += 1
        for lab in image_labels[n]:
            G[lab] += sh * sw
        anywhere = {labcat[int(v)] for v in np.unique(layers) if v > 0} | {labcat[lab] for lab in image_labels[n]}
        for u in range(n_units):
            up = F.interpolate(acts[n, u][None, None], size=(sh, sw), mode="bilinear", align_corners=False)[0, 0]
            mask = [(y, x) for y in range(sh) for x in range(sw) if up[y, x] > thresholds[u]]
            overlapped = {labcat[lab] for lab in image_labels[n]}
            for y, x in mask:
                for layer in layers:
                    lab = int(layer[y, x])
                    if lab > 0:
                        inter[(u, lab)] += 1
                        overlapped.add(labcat[lab])
            for lab in image_labels[n]:
                inter[(u, lab)] += len(mask)
            for c in overlapped if rule == "lite" else anywhere:
                A[u, c] += len(mask)
    return G, inter, A


@pytest.mark.parametrize("rule", ["lite", "original"])
@pytest.mark.parametrize("layout", ["pixel", "layers_and_image_level"])
def test_vectorised_counts_equal_the_per_pixel_reference(rule, layout):
    rng = np.random.default_rng(7 if rule == "lite" else 8)
    n_images, n_units, h, sh = 6, 4, 3, 7
    # Labels 1..3 are objects (pixel layers), 4..5 scenes (image-level in the second layout).
    labcat = {1: 0, 2: 0, 3: 0, 4: 1, 5: 1}
    concepts = [Concept(k, f"c{k}", CATS[v]) for k, v in labcat.items()]
    pixel_layers, image_labels = [], []
    for n in range(n_images):
        if layout == "pixel":
            layers = rng.choice([0, 1, 2, 3, 4], size=(1, sh, sh))
            image_labels.append([])
        else:
            n_layers = 2 if n % 3 else 0  # every third image lacks the object category
            layers = rng.choice([0, 1, 2, 3], size=(n_layers, sh, sh))
            image_labels.append([] if n == 1 else sorted(rng.choice([4, 5], size=1 + n % 2, replace=False).tolist()))
        pixel_layers.append(layers)
    acts = torch.from_numpy(rng.normal(size=(n_images, n_units, h, h)).astype(np.float32))
    thresholds = torch.quantile(acts.transpose(0, 1).reshape(n_units, -1), 0.8, dim=1)

    # The counter sees batches padded the way the loader pads them (0 layers / 0 labels).
    counts = IouCounts(n_units, Vocabulary.from_concepts(concepts, CATS), rule)
    for lo, hi in [(0, 4), (4, 6)]:
        width = max(len(pixel_layers[n]) for n in range(lo, hi))
        pix = torch.zeros((hi - lo, width, sh, sh), dtype=torch.long)
        for k, n in enumerate(range(lo, hi)):
            pix[k, : len(pixel_layers[n])] = torch.from_numpy(pixel_layers[n])
        counts.add(acts[lo:hi], thresholds, pix, image_labels[lo:hi])
    table = counts.table()

    G, inter, A = _reference(acts, thresholds, pixel_layers, image_labels, labcat, n_units, rule)
    assert table.truth.tolist() == [G[k] for k in labcat]
    assert table.intersect.tolist() == [[inter[(u, k)] for k in labcat] for u in range(n_units)]
    assert table.activation.tolist() == A.tolist()
    expected_iou = [
        [inter[(u, k)] / (A[u, labcat[k]] + G[k] - inter[(u, k)] + 1e-10) for k in labcat] for u in range(n_units)
    ]
    np.testing.assert_allclose(table.iou, expected_iou, rtol=1e-12)
    assert table.intersect.sum() > 0 and (table.activation > 0).any()  # the data exercised the counts


def test_counts_of_two_shards_merged_equal_one_pass():
    rng = np.random.default_rng(3)
    vocab = Vocabulary.from_concepts(CONCEPTS, CATS)
    acts = torch.from_numpy(rng.normal(size=(8, 3, 2, 2)).astype(np.float32))
    pix = torch.from_numpy(rng.integers(0, 3, size=(8, 1, 4, 4)))
    img = torch.from_numpy(rng.integers(0, 5, size=(8, 1)))
    T = torch.zeros(3)
    whole = IouCounts(3, vocab)
    whole.add(acts, T, pix, img)
    left, right = IouCounts(3, vocab), IouCounts(3, vocab)
    left.add(acts[:5], T, pix[:5], img[:5])
    right.add(acts[5:], T, pix[5:], img[5:])
    left.merge(right)
    assert np.array_equal(left.table().iou, whole.table().iou)
    assert left.images == 8


def test_tally_csv_has_netdissect_lite_columns_one_based_units_sorted_by_score(tmp_path):
    table = _hand_worked_counts("lite")
    write_tally(tmp_path / "tally.csv", table)
    header = (tmp_path / "tally.csv").read_text().splitlines()[0]
    assert header == (
        "unit,category,label,score,object-label,object-truth,object-activation,object-intersect,object-iou,"
        "scene-label,scene-truth,scene-activation,scene-intersect,scene-iou"
    )
    assert header.split(",") == tally_columns(CATS)
    rows = read_tally(tmp_path / "tally.csv")
    # unit 1 (0-based) scores 0.8 and comes first, as 1-based unit 2.
    assert [r["unit"] for r in rows] == [2, 1]
    first = rows[0]
    assert (first["category"], first["label"], first["score"]) == ("scene", "beach", pytest.approx(0.8))
    assert (first["object-label"], first["object-truth"], first["object-activation"], first["object-intersect"]) == (
        "dog", 2, 4, 2,
    )
    assert (first["scene-label"], first["scene-truth"], first["scene-activation"], first["scene-intersect"]) == (
        "beach", 4, 5, 4,
    )
    assert first["scene-iou"] == pytest.approx(0.8)


def test_a_label_number_missing_from_label_csv_is_reported():
    from tasks.engine.errors import DatasetError

    counts = IouCounts(1, Vocabulary.from_concepts(CONCEPTS, CATS))
    with pytest.raises(DatasetError, match="label number 9 .*label.csv"):
        counts.add(torch.zeros(1, 1, 2, 2), torch.zeros(1), torch.full((1, 1, 2, 2), 9), None)


@pytest.mark.parametrize("values", ["random", "integer_ties", "mostly_zero"])
def test_sparse_masks_equal_the_dense_interpolate_threshold(values):
    from tasks.engine.masks import sparse_masks

    for seed, (h, w, sh, sw) in enumerate([(7, 7, 112, 112), (3, 5, 17, 9), (1, 1, 6, 4), (8, 8, 5, 5), (4, 4, 4, 4)]):
        g = torch.Generator().manual_seed(seed)
        if values == "random":
            acts = torch.randn(2, 3, h, w, generator=g)
        elif values == "integer_ties":  # many values equal to T, upsampled values exactly on T
            acts = torch.randint(0, 3, (2, 3, h, w), generator=g).float()
        else:  # post-ReLU maps that are mostly zero: T = 0
            acts = torch.relu(torch.randn(2, 3, h, w, generator=g) - 1.0)
        T = torch.quantile(acts.transpose(0, 1).reshape(3, -1), 0.7, dim=1)
        dense = F.interpolate(acts, size=(sh, sw), mode="bilinear", align_corners=False) > T[None, :, None, None]
        masks = sparse_masks(acts, T, (sh, sw))
        mine = torch.zeros(2, 3, sh * sw, dtype=torch.bool)
        mine[masks.image, masks.unit, masks.pixel] = True
        assert torch.equal(mine.view_as(dense), dense)
        assert torch.equal(masks.area, dense.sum(dim=(2, 3)))
        assert len(masks.pixel) == int(dense.sum())  # no pixel reported twice


@pytest.mark.parametrize("quantile", [0.995, 0.9, 0.5])
def test_sparse_masks_skip_only_rows_that_cannot_pass(quantile):
    """The per-row bound (a row never exceeds the mix of its tile's top and bottom corner maxima) prunes
    rows; at a dissection's top 0.5% and at looser thresholds the masks still equal interpolate()'s."""
    from tasks.engine.masks import sparse_masks

    g = torch.Generator().manual_seed(11)
    for acts in (torch.relu(torch.randn(4, 64, 7, 7, generator=g)) ** 2, torch.randn(3, 16, 14, 14, generator=g)):
        T = torch.quantile(acts.transpose(0, 1).reshape(acts.shape[1], -1), quantile, dim=1)
        dense = F.interpolate(acts, size=(112, 112), mode="bilinear", align_corners=False) > T[None, :, None, None]
        masks = sparse_masks(acts, T, (112, 112))
        mine = torch.zeros(acts.shape[0], acts.shape[1], 112 * 112, dtype=torch.bool)
        mine[masks.image, masks.unit, masks.pixel] = True
        assert torch.equal(mine.view_as(dense), dense)
        assert len(masks.pixel) == int(dense.sum())
