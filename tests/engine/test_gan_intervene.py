"""Causal effects of interventions against a per-image reference that edits stages by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.engine.errors import EngineError
from tasks.engine.gan.intervene import Intervention, causal_effect, make_baseline, rank_units, top_units

from .gan_helpers import band_segmenter_for, forward_by_hand, labels_of, reference_z, tiny_generator

N, SEED, LAYER = 12, 5, "layer2"


@pytest.fixture(scope="module")
def models():
    gen = tiny_generator(seed=1)
    return gen, band_segmenter_for(gen)


def _reference_counts(gen, seg, units, values, cells: torch.Tensor, area: torch.Tensor):
    """Per image: label pixels inside ``area`` before and after forcing ``units`` on ``cells``."""

    def edit(name, x):
        if name == LAYER:
            for k, u in enumerate(units):
                x[0, u][cells] = values[k]
        return x

    before, after = np.zeros(11, dtype=np.int64), np.zeros(11, dtype=np.int64)
    for i in range(N):
        z = reference_z(i, gen.z_dim, SEED)
        lab_b = labels_of(seg, forward_by_hand(gen, z)[0])
        lab_a = labels_of(seg, forward_by_hand(gen, z, edit)[0])
        before += np.bincount(lab_b[area].numpy(), minlength=11)
        after += np.bincount(lab_a[area].numpy(), minlength=11)
    return before, after


def test_removing_units_everywhere_matches_the_hand_edited_generator(models) -> None:
    gen, seg = models
    base = make_baseline(gen, seg, n=N, seed=SEED, batch_size=5)
    effect = causal_effect(gen, seg, Intervention(LAYER, [0, 2, 5]), base, batch_size=5)
    everywhere = torch.ones(8, 8, dtype=torch.bool)
    before, after = _reference_counts(gen, seg, [0, 2, 5], [0.0, 0.0, 0.0], everywhere,
                                      torch.ones(32, 32, dtype=torch.bool))
    np.testing.assert_array_equal(effect.before, before)
    np.testing.assert_array_equal(effect.after, after)
    assert (before != after).any(), "the edit must change some pixels for the test to bite"
    for label in range(11):
        expected = (before[label] - after[label]) / before[label] if before[label] else None
        assert effect.of(label) == (pytest.approx(expected) if expected is not None else None)


def test_inserting_in_an_image_region_forces_every_feature_cell_the_region_touches(models) -> None:
    gen, seg = models
    region = np.zeros((32, 32), dtype=bool)
    region[5:13, 20:23] = True  # rows 5..12 touch cells 1..3 (4 px per cell), columns 20..22 touch cell 5
    cells = torch.zeros(8, 8, dtype=torch.bool)
    cells[1:4, 5] = True
    base = make_baseline(gen, seg, n=N, seed=SEED)
    iv = Intervention(LAYER, [1, 6], "insert", values=[2.5, 4.0], region=region)
    effect = causal_effect(gen, seg, iv, base)
    before, after = _reference_counts(gen, seg, [1, 6], [2.5, 4.0], cells, torch.from_numpy(region))
    np.testing.assert_array_equal(effect.before, before)
    np.testing.assert_array_equal(effect.after, after)
    assert effect.area == region.sum() * N
    label = int(np.argmax(after - before))
    assert effect.of(label) == pytest.approx((after[label] - before[label]) / (region.sum() * N - before[label]))


def test_a_feature_resolution_region_is_used_as_given(models) -> None:
    gen, seg = models
    cells = np.zeros((8, 8), dtype=bool)
    cells[2:6, 0:3] = True
    base = make_baseline(gen, seg, n=N, seed=SEED)
    effect = causal_effect(gen, seg, Intervention(LAYER, [3], region=cells), base)
    area = torch.from_numpy(cells).repeat_interleave(4, 0).repeat_interleave(4, 1)  # each cell is 4x4 px
    before, after = _reference_counts(gen, seg, [3], [0.0], torch.from_numpy(cells), area)
    np.testing.assert_array_equal(effect.before, before)
    np.testing.assert_array_equal(effect.after, after)


def test_ranking_holds_each_units_single_ablation_effect(models) -> None:
    gen, seg = models
    base = make_baseline(gen, seg, n=N, seed=SEED)
    ranking = rank_units(gen, seg, LAYER, base, batch_size=4)
    assert ranking.shape == (8, 11)
    for u in (0, 7):
        before, after = _reference_counts(gen, seg, [u], [0.0], torch.ones(8, 8, dtype=torch.bool),
                                          torch.ones(32, 32, dtype=torch.bool))
        with np.errstate(invalid="ignore", divide="ignore"):
            expected = np.where(before > 0, (before - after) / np.maximum(before, 1), np.nan)
        np.testing.assert_allclose(ranking[u], expected, equal_nan=True)
    label = 4
    col = np.nan_to_num(ranking[:, label], nan=-np.inf)
    assert top_units(ranking, label, 3) == sorted(range(8), key=lambda u: (-col[u], u))[:3]


@pytest.mark.parametrize("iv, message", [
    (Intervention(LAYER, []), "no unit selected"),
    (Intervention(LAYER, [8]), "unknown unit"),
    (Intervention(LAYER, [1, 1]), "twice"),
    (Intervention(LAYER, [1], "paint"), "unknown mode"),
    (Intervention(LAYER, [1], "insert"), "insert needs values"),
    (Intervention(LAYER, [1], region=np.zeros((8, 8), dtype=bool)), "region is empty"),
    (Intervention(LAYER, [1], region=np.ones((5, 5), dtype=bool)), "fits neither"),
])
def test_bad_interventions_are_refused_with_a_clear_message(models, iv, message) -> None:
    gen, seg = models
    base = make_baseline(gen, seg, n=2, seed=SEED)
    with pytest.raises(EngineError, match=message):
        causal_effect(gen, seg, iv, base)


def test_the_specificity_matrix_rows_are_each_digits_top_units_removed_measured_on_every_digit(models) -> None:
    """Row d of `specificity` = share of each digit's pixels removed when d's top-k units are removed,
    checked against the hand-edited generator; `specificity_random` uses k random units per row."""
    from tasks.engine.gan.ranking import digit_effects, specificity_summary

    gen, seg = models
    base = make_baseline(gen, seg, n=N, seed=SEED)
    ranking = rank_units(gen, seg, LAYER, base, batch_size=4)
    k = 3
    out = digit_effects(gen, seg, LAYER, ranking, base, k=k, seed=SEED)
    everywhere, whole = torch.ones(8, 8, dtype=torch.bool), torch.ones(32, 32, dtype=torch.bool)
    assert len(out["specificity"]) == len(out["specificity_random"]) == 10
    checked = 0
    for d in range(10):
        top = top_units(ranking, d + 1, k)
        assert out["digits"][str(d)]["top_units"] == [u + 1 for u in top]
        before, after = _reference_counts(gen, seg, top, [0.0] * k, everywhere, whole)
        for c in range(10):
            b = before[c + 1]
            expected = None if b == 0 else pytest.approx((b - after[c + 1]) / b)
            assert out["specificity"][d][c] == expected
            checked += b > 0
        chosen = [u - 1 for u in out["specificity_random_units"][d]]
        assert len(set(chosen)) == k and all(0 <= u < 8 for u in chosen)
        before, after = _reference_counts(gen, seg, chosen, [0.0] * k, everywhere, whole)
        assert out["specificity_random"][d] == [None if before[c + 1] == 0 else
                                                pytest.approx((before[c + 1] - after[c + 1]) / before[c + 1])
                                                for c in range(10)]
    assert len({tuple(s) for s in out["specificity_random_units"]}) > 1  # one random set per row, not one for all
    assert checked > 0, "some digit must be segmented for the test to bite"
    summary = specificity_summary([[0.9 if r == c else 0.1 for c in range(10)] for r in range(10)])
    assert summary["specific_digits"] == 10
    summary = specificity_summary([[0.9 if r == c else (0.25 if c == 0 else 0.1) for c in range(10)]
                                   for r in range(10)])
    assert summary["specific_digits"] == 1  # only row 0, whose own column is the diagonal
    assert specificity_summary([[None] * 10] * 10)["specific_digits"] == 0
