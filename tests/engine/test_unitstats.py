"""Alignment of unit rankings with concept presence, against hand-worked numbers, a naive
loop and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from tasks.engine.unitstats import best_concepts, rank_images, unit_alignment


def _naive(scores: np.ndarray, present: np.ndarray, ks: list[int], recalls: list[float]) -> tuple:
    """One unit, one concept, by plain loops over the ranking and over thresholds."""
    n = len(scores)
    order = sorted(range(n), key=lambda i: (-scores[i], i))
    p_at_k = [sum(present[i] for i in order[: min(k, n)]) / min(k, n) for k in ks]
    total = sum(present)
    p_at_r = []
    for r in recalls:
        hits, value = 0, float("nan")
        for rank, i in enumerate(order, start=1):
            hits += present[i]
            if total and hits >= r * total:
                value = hits / rank
                break
        p_at_r.append(value)
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(scores.tolist()), reverse=True):
        chosen = scores >= t
        tp = int((present & chosen).sum())
        recall, precision = (tp / total if total else 0.0), tp / int(chosen.sum())
        ap += (recall - last_recall) * precision
        last_recall = recall
    return p_at_k, p_at_r, (ap if total else float("nan"))


def test_a_hand_worked_ranking_gives_the_expected_numbers() -> None:
    scores = np.array([[0.9], [0.1], [0.8], [0.3], [0.5]])
    present = np.array([[1], [0], [0], [1], [1]], dtype=bool)  # ranking hits: yes no yes yes no
    result = unit_alignment(scores, present, ks=[1, 3, 5], recalls=[0.25, 0.5, 0.75])
    assert result.precision_at_k[0, 0].tolist() == pytest.approx([1, 2 / 3, 3 / 5])
    assert result.precision_at_recall[0, 0].tolist() == pytest.approx([1, 2 / 3, 3 / 4])
    assert result.average_precision[0, 0] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)


def test_tied_scores_form_one_threshold_for_average_precision() -> None:
    scores = np.array([[1.0], [1.0], [0.0]])
    present = np.array([[0], [1], [1]], dtype=bool)
    result = unit_alignment(scores, present, ks=[1], recalls=[0.5])
    # threshold 1.0: recall 1/2 at precision 1/2; threshold 0.0: recall 1 at precision 2/3
    assert result.average_precision[0, 0] == pytest.approx(0.5 * 0.5 + 0.5 * 2 / 3)
    # ranking ties go by image index: image 0 (absent) comes first
    assert result.precision_at_k[0, 0, 0] == 0.0
    assert rank_images(scores)[:, 0].tolist() == [0, 1, 2]


def test_it_matches_a_naive_loop_and_sklearn_on_random_data_with_ties() -> None:
    rng = np.random.default_rng(0)
    n, units, concepts = 60, 5, 4
    scores = np.round(rng.random((n, units)) * 5) / 5  # few distinct values: many ties
    scores[:, 0] = rng.random(n)  # and one unit without ties
    presence = rng.random((n, concepts)) < np.array([0.1, 0.3, 0.6, 0.0])
    ks, recalls = [5, 20, 100], [0.25, 0.5, 0.75]
    result = unit_alignment(scores, presence, ks=ks, recalls=recalls, max_elements=n * concepts * 2)
    assert result.ks == [5, 20, 60] and result.notes == ["K=100 capped at N=60"]
    for u in range(units):
        for c in range(concepts):
            p_at_k, p_at_r, ap = _naive(scores[:, u], presence[:, c], ks, recalls)
            np.testing.assert_allclose(result.precision_at_k[u, c], p_at_k)
            np.testing.assert_allclose(result.precision_at_recall[u, c], p_at_r)
            np.testing.assert_allclose(result.average_precision[u, c], ap)
            if presence[:, c].any():
                assert result.average_precision[u, c] == pytest.approx(
                    average_precision_score(presence[:, c], scores[:, u])
                )


def test_a_concept_present_nowhere_has_no_recall_and_no_best_unit_match() -> None:
    scores = np.array([[0.2, 0.9], [0.8, 0.1], [0.5, 0.5]])
    presence = np.array([[0, 1], [0, 0], [0, 0]], dtype=bool)
    result = unit_alignment(scores, presence, ks=[1], recalls=[0.5])
    assert np.isnan(result.average_precision[:, 0]).all()
    assert np.isnan(result.precision_at_recall[:, 0]).all()
    assert result.precision_at_k[:, 0, 0].tolist() == [0.0, 0.0]
    assert best_concepts(result).tolist() == [1, 1]
    assert result.average_precision[:, 1].tolist() == pytest.approx([1 / 3, 1.0])


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="share N"):
        unit_alignment(np.zeros((3, 2)), np.zeros((4, 2), dtype=bool))
