"""IoU counting between unit masks and concept labels, labels, tally.csv.

Counts are exact integer sums over images, so shards add up to the single-pass answer:
``G[l]`` pixels labelled l, ``I[u, l]`` mask pixels labelled l, ``A[u, c]`` mask pixels of
images that count for category c (Lite or original rule). IoU and labels follow from them.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .errors import DatasetError, EngineError
from .masks import sparse_masks
from .tally import read_tally, tally_categories, tally_columns  # noqa: F401  (re-exported)

IOU_RULES = ("lite", "original")
INTERPRETABLE_IOU = 0.04


@dataclass
class Vocabulary:
    """Concepts of a probe dataset as arrays: numbers, names, primary category index."""

    categories: list[str]
    numbers: np.ndarray  # [K] global label numbers, ascending
    names: list[str]
    concept_category: np.ndarray  # [K] index into categories

    @classmethod
    def from_concepts(cls, concepts: Sequence, categories: Sequence[str]) -> Vocabulary:
        cats = list(categories)
        ordered = sorted(concepts, key=lambda c: c.number)
        for c in ordered:
            if c.category not in cats:
                raise DatasetError(f"concept '{c.name}' has category '{c.category}' missing from category.csv")
        return cls(
            categories=cats,
            numbers=np.array([c.number for c in ordered], dtype=np.int64),
            names=[c.name for c in ordered],
            concept_category=np.array([cats.index(c.category) for c in ordered], dtype=np.int64),
        )

    @property
    def table_size(self) -> int:
        """Length of arrays indexed directly by label number (0 included)."""
        return int(self.numbers.max()) + 1 if len(self.numbers) else 1

    def label_category_table(self) -> torch.Tensor:
        """Primary category index per label number; -1 for 0 and numbers not in the vocabulary."""
        table = torch.full((self.table_size,), -1, dtype=torch.long)
        table[torch.from_numpy(self.numbers)] = torch.from_numpy(self.concept_category)
        return table


def _pad_image_labels(image_labels, batch: int, device) -> torch.Tensor:
    """Image-level labels as a [B, n] long tensor, 0 padded (0 means none)."""
    if image_labels is None:
        return torch.zeros((batch, 0), dtype=torch.long, device=device)
    if isinstance(image_labels, torch.Tensor):
        return image_labels.to(device=device, dtype=torch.long).reshape(batch, -1)
    width = max((len(x) for x in image_labels), default=0)
    out = torch.zeros((batch, width), dtype=torch.long)
    for i, labels in enumerate(image_labels):
        labels = torch.as_tensor(labels, dtype=torch.long).flatten()
        out[i, : len(labels)] = labels
    return out.to(device)


class IouCounts:
    """Running IoU counts for one layer: ``add`` per batch, ``merge`` shards, ``state_dict``.

    ``add`` and ``merge`` count under inference mode whatever the caller's mode, as the running
    statistics do (runningstats.py): the counts may have been made in a sweep's inference mode and
    are changed in place."""

    def __init__(self, num_units: int, vocab: Vocabulary, rule: str = "lite",
                 device: str | torch.device = "cpu") -> None:
        if rule not in IOU_RULES:
            raise EngineError(f"unknown IoU rule '{rule}'; choose one of {', '.join(IOU_RULES)}")
        self.num_units = num_units
        self.vocab = vocab
        self.rule = rule
        self.device = torch.device(device)
        n_labels, n_cats = vocab.table_size, len(vocab.categories)
        self.truth = torch.zeros(n_labels, dtype=torch.long, device=self.device)  # G[l]
        self.intersect = torch.zeros((num_units, n_labels), dtype=torch.long, device=self.device)  # I[u,l]
        self.activation = torch.zeros((num_units, n_cats), dtype=torch.long, device=self.device)  # A[u,c]
        self.images = 0
        self._labcat = vocab.label_category_table().to(self.device)
        # the same with -1 (no category) sent to a spare column n_cats: add()'s flags index it unfiltered
        self._labcat_or_spare = torch.where(self._labcat >= 0, self._labcat, n_cats)

    def _check_labels(self, labels: torch.Tensor) -> None:
        if labels.numel() and (int(labels.max()) >= self.vocab.table_size or int(labels.min()) < 0):
            bad = int(labels.max()) if int(labels.max()) >= self.vocab.table_size else int(labels.min())
            raise DatasetError(f"label number {bad} appears in the data but not in label.csv; fix label.csv or the "
                               f"PNGs")

    @torch.inference_mode()
    def add(self, acts: torch.Tensor, thresholds: torch.Tensor, pixel_labels: torch.Tensor, image_labels=None) -> None:
        """Count one batch: acts [B, U, h, w]; pixel_labels [B, L, sh, sw] (L may be 0)."""
        dev = self.device
        acts = acts.to(dev)
        B, U = acts.shape[:2]
        if self.num_units != U:
            raise ValueError(f"expected {self.num_units} units, got {U}")
        T = torch.as_tensor(thresholds, dtype=torch.float32).to(dev)
        pix = pixel_labels.to(dev, torch.long)
        sh, sw = pix.shape[-2:]
        P = sh * sw
        pix = pix.reshape(B, -1, P)
        img = _pad_image_labels(image_labels, B, dev)
        self._check_labels(pix)
        self._check_labels(img)
        n_labels, C = self.vocab.table_size, len(self.vocab.categories)
        labcat = self._labcat

        self.truth += torch.bincount(pix.flatten(), minlength=n_labels)
        img_valid = img > 0
        self.truth.index_add_(0, img[img_valid], torch.full_like(img[img_valid], P))
        self.images += B

        # Categories of the image-level labels of each image, and (original rule) of any label.
        # "A label of category c" means the label's primary category, the one category a label
        # has in NetDissect-Lite's IoU (and cat(l) in the IoU denominator), not the index.csv column it
        # was stored under; GAN Dissection likewise maps each label to a single category.
        img_cat = torch.zeros((B, C), dtype=torch.bool, device=dev)
        rows = torch.arange(B, device=dev)[:, None].expand_as(img)
        cats = labcat[img]
        ok = img_valid & (cats >= 0)
        img_cat[rows[ok], cats[ok]] = True
        if self.rule == "original":
            any_cat = img_cat.clone()
            pcats = labcat[pix]
            okp = pcats >= 0
            prow = torch.arange(B, device=dev)[:, None, None].expand_as(pix)
            any_cat[prow[okp], pcats[okp]] = True

        masks = sparse_masks(acts, T, (sh, sw))
        area = masks.area  # [B, U] = |M[n, u]|
        # Flat indices throughout (a gather per label layer, one scatter each): the label under
        # every mask pixel, I[u, label] += 1 (label 0 lands in column 0 and is cleared below), and
        # for the Lite rule a flag per (image, unit, category of a label under the mask), where
        # labels without a category go to a spare column C.
        pix = pix.contiguous()
        at = masks.image * (pix.shape[1] * P) + masks.pixel
        ones = torch.ones_like(at)
        flags = None
        if self.rule == "lite":
            flags = torch.zeros((B, U, C + 1), dtype=torch.bool, device=dev)
            flags[:, :, :C] = img_cat[:, None, :]
            flag_at = masks.pair * (C + 1)
        unit_at = masks.unit * n_labels
        flat_pix = pix.view(-1)
        for layer in range(pix.shape[1]):
            lab = flat_pix.index_select(0, at + layer * P)
            self.intersect.view(-1).index_add_(0, unit_at + lab, ones)
            if flags is not None:
                flags.view(-1).index_fill_(0, flag_at + self._labcat_or_spare.index_select(0, lab), True)
        self.intersect[:, 0] = 0  # "unlabelled" is not a concept: the column stays zero
        if flags is not None:
            flags = flags[:, :, :C]
        if img.shape[1]:
            # An image-level label covers the whole image: I[u, l] += |M[n, u]|.
            valid = img_valid[:, None, :].expand(B, U, img.shape[1])
            idx = torch.arange(U, device=dev)[None, :, None] * n_labels + img[:, None, :]
            self.intersect.view(-1).index_add_(0, idx[valid], area[:, :, None].expand_as(valid)[valid])
        if flags is None:
            flags = any_cat[:, None, :].expand(B, U, C)
        self.activation += (flags.long() * area[:, :, None]).sum(dim=0)

    @torch.inference_mode()
    def merge(self, other: IouCounts) -> None:
        if other.rule != self.rule or other.intersect.shape != self.intersect.shape:
            raise ValueError("IoU counts of different rules or layers cannot be merged")
        self.truth += other.truth.to(self.device)
        self.intersect += other.intersect.to(self.device)
        self.activation += other.activation.to(self.device)
        self.images += other.images

    def state_dict(self) -> dict:
        return {
            "kind": "IouCounts",
            "rule": self.rule,
            "num_units": self.num_units,
            "images": self.images,
            "truth": self.truth.cpu(),
            "intersect": self.intersect.cpu(),
            "activation": self.activation.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.rule = state["rule"]
        self.images = int(state["images"])
        self.truth = state["truth"].to(self.device)
        self.intersect = state["intersect"].to(self.device)
        self.activation = state["activation"].to(self.device)

    def table(self) -> IouTable:
        return IouTable.from_counts(self)


@dataclass
class UnitLabel:
    unit: int  # 0-based
    label: str
    category: str
    score: float
    per_category: dict[str, tuple[str, float]] = field(default_factory=dict)


@dataclass
class IouTable:
    """Per-concept counts and IoU of one layer, in vocabulary (concept) order."""

    vocab: Vocabulary
    truth: np.ndarray  # [K]      G[l]
    intersect: np.ndarray  # [U, K]   I[u, l]
    activation: np.ndarray  # [U, C]   A[u, c]
    iou: np.ndarray  # [U, K]

    @classmethod
    def from_counts(cls, counts: IouCounts) -> IouTable:
        vocab = counts.vocab
        numbers = torch.from_numpy(vocab.numbers)
        truth = counts.truth.cpu()[numbers].numpy().astype(np.int64)
        intersect = counts.intersect.cpu()[:, numbers].numpy().astype(np.int64)
        activation = counts.activation.cpu().numpy().astype(np.int64)
        denom_a = activation[:, vocab.concept_category]  # A[u, cat(l)]
        iou = intersect / (denom_a + truth[None, :] - intersect + 1e-10)
        return cls(vocab, truth, intersect, activation, iou)

    def best_in_category(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per category: (best concept position [U], its IoU [U]); position -1 when empty."""
        out = []
        U = self.iou.shape[0]
        for c in range(len(self.vocab.categories)):
            members = np.flatnonzero(self.vocab.concept_category == c)
            if len(members) == 0:
                out.append((np.full(U, -1), np.zeros(U)))
                continue
            sub = self.iou[:, members]
            pick = sub.argmax(axis=1)
            out.append((members[pick], sub[np.arange(U), pick]))
        return out

    def labels(self) -> list[UnitLabel]:
        vocab = self.vocab
        best = self.iou.argmax(axis=1) if self.iou.shape[1] else np.zeros(self.iou.shape[0], dtype=int)
        per_cat = self.best_in_category()
        out = []
        for u in range(self.iou.shape[0]):
            per = {
                cat: ((vocab.names[pos[u]], float(val[u])) if pos[u] >= 0 else ("", 0.0))
                for cat, (pos, val) in zip(vocab.categories, per_cat)
            }
            if self.iou.shape[1] == 0:
                out.append(UnitLabel(u, "", "", 0.0, per))
                continue
            k = int(best[u])
            out.append(
                UnitLabel(u, vocab.names[k], vocab.categories[vocab.concept_category[k]], float(self.iou[u, k]), per)
            )
        return out


def write_tally(path: str | Path, table: IouTable) -> list[UnitLabel]:
    """tally.csv in NetDissect-Lite's layout: 1-based units, rows sorted by score descending."""
    labels = table.labels()
    vocab = table.vocab
    per_cat = table.best_in_category()
    order = sorted(range(len(labels)), key=lambda u: (-labels[u].score, u))
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(tally_columns(vocab.categories))
        for u in order:
            lab = labels[u]
            row: list = [u + 1, lab.category, lab.label, repr(lab.score)]
            for c, (pos, val) in enumerate(per_cat):
                k = int(pos[u])
                if k < 0:
                    row += ["", 0, 0, 0, repr(0.0)]
                    continue
                row += [
                    vocab.names[k],
                    int(table.truth[k]),
                    int(table.activation[u, c]),
                    int(table.intersect[u, k]),
                    repr(float(val[u])),
                ]
            writer.writerow(row)
    return labels
