"""alignment.csv of `dissect` for datasets with image-level concept presence (the mixture).

Precision@K, precision at recall and AP of every unit's image ranking on such datasets. The ranking
score is each image's spatial max of the unit's map, gathered during the one forward sweep (an [N,
U] array, never N x U x H x W); `unitstats` does the maths. Only datasets with a class column get
it: there every image's digits are known, and reading presence does not mean decoding every label
PNG of a large Broden set again.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from .datasets import Batch, ProbeDataset
from .unitstats import DEFAULT_KS, unit_alignment


def wants_alignment(dataset: ProbeDataset) -> bool:
    return dataset.targets() is not None and bool(getattr(dataset, "concepts", None))


class AlignmentCollector:
    """Per-image spatial maxima per layer during the sweep; ``write`` makes alignment.csv."""

    def __init__(self) -> None:
        self.parts: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}

    def add(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> None:
        index = batch.indices.cpu().numpy()
        for name, acts in outputs.items():
            scores = acts.flatten(2).amax(dim=2) if acts.dim() > 2 else acts
            self.parts.setdefault(name, []).append((index, scores.float().cpu().numpy()))

    def write(self, dataset: ProbeDataset, out_dir: Path) -> None:
        presence_all = dataset.image_level_presence()
        if presence_all is None:
            return
        names = [c.name for c in dataset.concepts]
        for layer, parts in self.parts.items():
            index = np.concatenate([p[0] for p in parts])
            scores = np.concatenate([p[1] for p in parts])
            order = np.argsort(index, kind="stable")  # dataset order, so ties break by image index
            index, scores = index[order], scores[order]
            al = unit_alignment(scores, presence_all[index])
            # Columns keep the asked K; with fewer images than K the value is precision over all N.
            header = ["unit", "concept", "ap"] + [f"precision@{k}" for k in DEFAULT_KS]
            header += [f"precision@recall{r:g}" for r in al.recalls]
            with open(Path(out_dir) / layer / "alignment.csv", "w", newline="") as fh:
                writer = csv.writer(fh)
                writer.writerow(header)  # unit 1-based, like tally.csv; NaN where a concept is absent
                for u in range(scores.shape[1]):
                    for c, name in enumerate(names):
                        writer.writerow(
                            [u + 1, name, repr(float(al.average_precision[u, c]))]
                            + [repr(float(v)) for v in al.precision_at_k[u, c]]
                            + [repr(float(v)) for v in al.precision_at_recall[u, c]]
                        )
