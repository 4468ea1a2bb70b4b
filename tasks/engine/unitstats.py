"""How well a unit's ranking of images matches where a concept is present (alignment).

Input: per-image unit scores [N, U] (the spatial max of each unit's map) and image-level
concept presence bool [N, C]. Each unit ranks images by score, highest first, ties by
image index (the same order as the top images). For every (unit, concept):
  precision@K          fraction of the top K images showing the concept (K capped at N);
  precision at recall r precision at the first rank where recall >= r;
  average precision    non-interpolated AP, sum over score thresholds of
                       (recall step) x (precision), with tied scores forming one threshold
                       (as sklearn.metrics.average_precision_score does, so image order
                       never matters for AP).
A concept present in no image has no recall: precision at recall and AP are NaN there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

DEFAULT_KS = (100, 300, 500, 700)
DEFAULT_RECALLS = (0.25, 0.5, 0.75)


@dataclass
class Alignment:
    ks: list[int]  # the K used, each capped at N
    recalls: list[float]
    precision_at_k: np.ndarray  # float [U, C, len(ks)]
    precision_at_recall: np.ndarray  # float [U, C, len(recalls)]
    average_precision: np.ndarray  # float [U, C]
    notes: list[str] = field(default_factory=list)  # e.g. "K=700 capped at N=500"


def rank_images(scores: np.ndarray) -> np.ndarray:
    """int [N, U]: per unit, image indices by descending score, ties by image index."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), axis=0, kind="stable")


def _chunk_alignment(
    scores: np.ndarray, presence: np.ndarray, ks: list[int], recalls: list[float]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = scores.shape[0]
    order = rank_images(scores)  # [N, u]
    ranked_scores = np.take_along_axis(scores, order, axis=0)
    hits = presence[order]  # [N, u, C] bool: is the concept in the image at each rank
    cum = np.cumsum(hits, axis=0, dtype=np.int64)  # [N, u, C]
    total = cum[-1].astype(np.float64)  # [u, C] images showing the concept

    p_at_k = np.stack([cum[k - 1] / k for k in ks], axis=-1)

    with np.errstate(invalid="ignore", divide="ignore"):
        p_at_r = []
        for r in recalls:
            reached = cum >= r * total[None]  # [N, u, C]; recall >= r from the first True on
            first = reached.argmax(axis=0)  # [u, C]
            got = np.take_along_axis(cum, first[None], axis=0)[0] / (first + 1.0)
            p_at_r.append(np.where(total > 0, got, np.nan))

        # AP with tied scores as one threshold: a hit at any rank of a tie group earns the
        # precision measured at the end of its group.
        is_end = np.ones_like(ranked_scores, dtype=bool)
        is_end[:-1] = ranked_scores[:-1] != ranked_scores[1:]
        end_at = np.where(is_end, np.arange(n)[:, None], n)
        group_end = np.minimum.accumulate(end_at[::-1], axis=0)[::-1]  # [N, u]
        precision_end = np.take_along_axis(cum, group_end[:, :, None], axis=0) / (group_end[:, :, None] + 1.0)
        ap = (hits * precision_end).sum(axis=0) / total
        ap = np.where(total > 0, ap, np.nan)
    return p_at_k, np.stack(p_at_r, axis=-1), ap


def unit_alignment(
    scores: np.ndarray,
    presence: np.ndarray,
    *,
    ks: Sequence[int] = DEFAULT_KS,
    recalls: Sequence[float] = DEFAULT_RECALLS,
    max_elements: int = 1 << 24,
) -> Alignment:
    """Precision@K, precision at recall and AP of every unit for every concept.

    Units are processed in chunks so that the [N, units, C] work arrays stay below about
    `max_elements` entries (memory stays bounded for Broden-sized inputs).
    """
    scores = np.asarray(scores, dtype=np.float64)
    presence = np.asarray(presence, dtype=bool)
    if scores.ndim != 2 or presence.ndim != 2 or scores.shape[0] != presence.shape[0]:
        raise ValueError(f"scores [N, U] and presence [N, C] must share N; got {scores.shape} and {presence.shape}.")
    n, units = scores.shape
    concepts = presence.shape[1]
    if n == 0:
        raise ValueError("unit_alignment needs at least one image.")
    notes = [f"K={k} capped at N={n}" for k in ks if k > n]
    used = [min(int(k), n) for k in ks]
    step = max(1, max_elements // max(1, n * concepts))
    parts = [_chunk_alignment(scores[:, s : s + step], presence, used, list(recalls)) for s in range(0, units, step)]
    return Alignment(
        ks=used,
        recalls=[float(r) for r in recalls],
        precision_at_k=np.concatenate([p[0] for p in parts]) if parts else np.zeros((0, concepts, len(used))),
        precision_at_recall=np.concatenate([p[1] for p in parts]) if parts else np.zeros((0, concepts, len(recalls))),
        average_precision=np.concatenate([p[2] for p in parts]) if parts else np.zeros((0, concepts)),
        notes=notes,
    )


def best_concepts(alignment: Alignment) -> np.ndarray:
    """int [U]: per unit, the concept with the highest AP (-1 when no concept is present)."""
    ap = np.nan_to_num(alignment.average_precision, nan=-1.0)
    best = ap.argmax(axis=1) if ap.size else np.zeros(ap.shape[0], dtype=np.int64)
    return np.where(ap.max(axis=1, initial=-1.0) >= 0, best, -1)
