"""Why does the best digit-0 unit stay below the seed's precision@K of 1.00? Measures, for a
trained network, what the sanity report can only hint at:

1. precision@K of the same unit on validation sets of growing size (the first N images of one
   val set, so each is a superset of the last): precision@K is bounded by positives / K, and
   the seed does not say how many validation images it ranked;
2. what the top-K images that miss the digit show: which other digits, and whether their two
   digits touch (strokes within 1 px), against the rate among all images.

`python -m benchmarks.precision_probe CHECKPOINT VAL_DIR [--sizes 1000,2000,4000,10000]`
prints one JSON object. Framework-free; forward passes only.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tasks.engine.datasets import BrodenDataset
from tasks.engine.models import load_model
from tasks.engine.train import load_mixture_tensors
from tasks.engine.unitstats import rank_images, unit_alignment
from tasks.engine.sanity.measure import unit_scores
from tasks.engine.sanity.pipeline import KS, LAYERS, RECALLS


def touching(val_dir: Path, n: int) -> np.ndarray:
    """bool [n]: the picture's digits have strokes within 1 px of each other (from the masks)."""
    out = np.zeros(n, dtype=bool)
    for i in range(n):
        with Image.open(val_dir / "images" / f"{i:05d}_object.png") as im:
            label = np.asarray(im)[..., 0]
        digits = [d for d in np.unique(label) if d]
        grown = []
        for d in digits:
            m = label == d
            g = m.copy()  # 3x3 dilation
            g[1:] |= m[:-1]
            g[:-1] |= m[1:]
            g[:, 1:] |= g[:, :-1].copy()
            g[:, :-1] |= g[:, 1:].copy()
            grown.append((m, g))
        out[i] = any(grown[a][1][grown[b][0]].any() for a in range(len(grown)) for b in range(len(grown)) if a != b)
    return out


def probe(checkpoint: Path, val_dir: Path, sizes: Sequence[int], digit: int = 0, device: str = "cpu") -> dict:
    model = load_model("mixturenet", checkpoint)
    val = BrodenDataset(val_dir)
    images, targets, _ = load_mixture_tensors(val_dir)
    presence = val.image_level_presence()
    k = [c.name for c in val.concepts].index(str(digit))
    scores, logits = unit_scores(model, images, list(LAYERS), device)
    full = len(images)
    # The unit chosen as the report chooses it: largest AP for the digit over all conv layers, on all images.
    best = max(((name, u, float(unit_alignment(scores[name][:, [u]], presence[:, [k]]).average_precision[0, 0]))
                for name in LAYERS for u in range(scores[name].shape[1])), key=lambda t: (t[2], t[0]))
    name, unit, ap = best
    by_size = {}
    for n in sizes:
        n = min(n, full)
        a = unit_alignment(scores[name][:n, [unit]], presence[:n, [k]], ks=KS, recalls=RECALLS)
        by_size[str(n)] = {
            "positives": int(presence[:n, k].sum()),
            "precision_at_k": {str(K): round(float(a.precision_at_k[0, 0, j]), 3) for j, K in enumerate(KS)},
            "precision_at_recall": {f"{r:g}": round(float(a.precision_at_recall[0, 0, j]),
                                                    3) for j, r in enumerate(RECALLS)},
            "ap": round(float(a.average_precision[0, 0]), 3),
        }
    order = rank_images(scores[name][:, [unit]])[:, 0]
    touch = touching(val_dir, full)
    misses = {}
    for K in (100, 300):
        top = order[:K]
        wrong = top[~presence[top, k]]
        right = top[presence[top, k]]
        misses[str(K)] = {
            "n_false": int(len(wrong)),
            "digits_shown": {c.name: round(float(presence[wrong, j].mean()), 3) if len(wrong) else 0.0
                             for j, c in enumerate(val.concepts)},
            "touching_among_misses": round(float(touch[wrong].mean()), 3) if len(wrong) else None,
            "touching_among_hits": round(float(touch[right].mean()), 3) if len(right) else None,
        }
    return {
        "checkpoint": str(checkpoint), "val_dir": str(val_dir), "n_val": full, "digit": digit,
        "network": model.config.get("design", "mixturenet"),
        "val_accuracy": round(float((logits.argmax(1) == targets.numpy()).mean()), 4),
        "unit": f"{name} u{unit}", "ap": round(ap, 3), "by_val_size": by_size, "misses": misses,
        "touching_rate_all": round(float(touch.mean()), 3),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.precision_probe", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("val_dir", type=Path)
    parser.add_argument("--sizes", default="1000,2000,4000,10000")
    parser.add_argument("--digit", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = probe(args.checkpoint, args.val_dir, [int(s) for s in args.sizes.split(",")], digit=args.digit)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
