"""GAN Dissection's per-(unit, concept) threshold: the one that maximises the information
quality ratio IQR = I(M; S_c) / H(M, S_c) between the unit's mask M = up(r_u) > t and the
concept's segmentation S_c (Bau et al. 2019, eq. 2).

Candidate thresholds are per-unit quantiles of the unit's feature-map values; one pass
bins each upsampled pixel by how many candidates it exceeds, per label, so every
candidate's 2x2 contingency table (and so IQR and IoU) comes from cumulative sums.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

# Fractions of a unit's values above each candidate threshold.
CANDIDATE_TOP_FRACTIONS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.15, 0.2, 0.3, 0.5)


def candidate_thresholds(features: torch.Tensor, fractions=CANDIDATE_TOP_FRACTIONS) -> torch.Tensor:
    """float [U, J] ascending: per unit, the (1 - f) quantiles of its values in ``features`` [N, U, h, w]."""
    values = features.transpose(0, 1).reshape(features.shape[1], -1).float()
    levels = torch.tensor(sorted(1.0 - f for f in fractions))
    return torch.stack([torch.quantile(v, levels) for v in values])


class IqrCounts:
    """hist[u, b, l]: upsampled pixels of unit u exceeding exactly b candidates, with label l."""

    def __init__(self, candidates: torch.Tensor, num_labels: int) -> None:
        self.candidates = candidates.contiguous()
        self.num_labels = num_labels
        U, J = candidates.shape
        self.hist = torch.zeros((U, J + 1, num_labels), dtype=torch.long)

    @torch.inference_mode()  # the histogram is changed in place: the same mode whatever the caller's
    def add(self, acts: torch.Tensor, labels: torch.Tensor) -> None:
        """acts [B, U, h, w]; labels long [B, H, W] (0 = background / unlabelled)."""
        lab = labels.long().flatten()
        L, J1 = self.num_labels, self.hist.shape[1]
        for u in range(acts.shape[1]):
            # One unit at a time: all units upsampled at once would need B*U*H*W floats.
            up = F.interpolate(acts[:, u : u + 1].float(), size=labels.shape[-2:], mode="bilinear", align_corners=False)
            # bucketize(right=False) = number of candidates strictly below the value, i.e.
            # the candidates t with value > t (the strict mask rule).
            b = torch.bucketize(up.flatten(), self.candidates[u])
            self.hist[u] += torch.bincount(b * L + lab, minlength=J1 * L).view(J1, L)

    def result(self, concept_numbers: list[int]) -> dict[str, np.ndarray]:
        """Per unit and concept: best candidate index, threshold, IQR and IoU there."""
        hist = self.hist.double()
        above = hist.flip(1).cumsum(1).flip(1)[:, 1:]  # [U, J, L]: pixels with value > cand[j]
        total = hist[0].sum()
        mask = above.sum(2, keepdim=True)  # [U, J, 1]
        cols = torch.tensor(concept_numbers)
        inter = above[:, :, cols]  # [U, J, K]
        truth = hist[0].sum(0)[cols][None, None, :]
        iqr = _iqr(inter, mask - inter, truth - inter, total - mask - truth + inter)
        iou = inter / (mask + truth - inter).clamp(min=1e-10)
        best = iqr.argmax(1)  # [U, K]; ties (e.g. all 0) -> the first, i.e. lowest, candidate
        take = lambda t: t.gather(1, best[:, None, :])[:, 0]  # noqa: E731
        return {
            "index": best.numpy(),
            "threshold": self.candidates.gather(1, best).numpy(),
            "iqr": take(iqr).numpy(),
            "iou": take(iou).numpy(),
        }


def _iqr(n11: torch.Tensor, n10: torch.Tensor, n01: torch.Tensor, n00: torch.Tensor) -> torch.Tensor:
    """Mutual information over joint entropy of the 2x2 table, 0 where either side is constant."""
    n = n11 + n10 + n01 + n00
    cells = torch.stack([n11, n10, n01, n00]) / n
    rows = torch.stack([n11 + n10, n11 + n10, n01 + n00, n01 + n00]) / n  # P(M) for each cell
    colp = torch.stack([n11 + n01, n10 + n00, n11 + n01, n10 + n00]) / n  # P(S) for each cell
    safe = cells.clamp(min=1e-300)
    mi = torch.where(cells > 0, cells * torch.log(safe / (rows * colp).clamp(min=1e-300)), 0.0).sum(0)
    joint = -torch.where(cells > 0, cells * torch.log(safe), 0.0).sum(0)
    return torch.where(joint > 0, mi / joint.clamp(min=1e-300), 0.0)


def write_iqr_csv(path: Path, result: dict[str, np.ndarray], names: list[str]) -> None:
    """unit (1-based), concept, threshold, top_fraction, iqr, iou; rows by unit then concept."""
    fractions = sorted(CANDIDATE_TOP_FRACTIONS, reverse=True)  # candidate j ascending = fraction descending
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["unit", "concept", "threshold", "top_fraction", "iqr", "iou"])
        for u in range(result["index"].shape[0]):
            for k, name in enumerate(names):
                j = int(result["index"][u, k])
                w.writerow([u + 1, name, repr(float(result["threshold"][u, k])), fractions[j],
                            repr(float(result["iqr"][u, k])), repr(float(result["iou"][u, k]))])
