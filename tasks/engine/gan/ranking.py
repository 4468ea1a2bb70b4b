"""Per digit: its top units by causal effect vs as many random units of the same layer.

Units are ranked on one set of samples and the sets are measured on another (a different
seed), so a unit's rank and its measured effect never share noise.
"""

from __future__ import annotations

import numpy as np
from torch import nn

from .intervene import Baseline, Intervention, causal_effect, layer_shape, top_units
from .models import DIGIT_NAMES


def centre_region(feature: tuple[int, int]) -> np.ndarray:
    """bool [h, w]: the central half-by-half square, where insertions are tried."""
    h, w = feature
    r = np.zeros((h, w), dtype=bool)
    r[h // 4 : h // 4 + max(1, h // 2), w // 4 : w // 4 + max(1, w // 2)] = True
    return r


EFFECT_BATCH = 100  # generated images per forward pass while an effect is measured


def digit_effects(generator: nn.Module, segmenter: nn.Module, layer: str, ranking: np.ndarray, base: Baseline, *,
                  k: int = 20, seed: int = 0, concept_means: np.ndarray | None = None) -> dict:
    """For each digit d: remove (and, with ``concept_means`` [U, 10], insert in the centre)
    its top-k units vs k random units; effects as ``CausalEffect`` defines them.

    Returns a JSON-able dict whose unit numbers count from 1, as tally.csv does.
    """
    shape = layer_shape(generator, layer)
    k = min(k, shape.units)
    rng = np.random.default_rng(seed)
    random_units = sorted(int(u) for u in rng.choice(shape.units, size=k, replace=False))
    removed_random = causal_effect(generator, segmenter, Intervention(layer, random_units), base,
                                   batch_size=EFFECT_BATCH, shape=shape)
    region = centre_region(shape.feature)
    out: dict = {"layer": layer, "k": k, "units_in_layer": shape.units, "random_units": [u + 1 for u in random_units],
                 "unit_numbering": "from 1, as tally.csv",
                 "n_images": len(base.z), "eval_seed": base.seed, "digits": {}}
    for d, name in enumerate(DIGIT_NAMES):
        number = d + 1
        top = top_units(ranking, number, k)
        removed_top = causal_effect(generator, segmenter, Intervention(layer, top), base, batch_size=EFFECT_BATCH,
                                    shape=shape)
        row = {
            "top_units": [u + 1 for u in top],
            "pixels_before": int(removed_top.before[number]),
            "remove_top": removed_top.of(number),
            "remove_random": removed_random.of(number),
            "overlap_with_random": len(set(top) & set(random_units)),
        }
        if concept_means is not None:
            for key, units in (("insert_top", top), ("insert_random", random_units)):
                values = np.maximum(concept_means[units, d], 0.0)
                iv = Intervention(layer, units, "insert", values=values, region=region)
                row[key] = causal_effect(generator, segmenter, iv, base, batch_size=EFFECT_BATCH,
                                         shape=shape).of(number)
        out["digits"][name] = row
    tops = [r["remove_top"] for r in out["digits"].values() if r["remove_top"] is not None]
    rands = [r["remove_random"] for r in out["digits"].values() if r["remove_random"] is not None]
    out["mean_remove_top"] = float(np.mean(tops)) if tops else None
    out["mean_remove_random"] = float(np.mean(rands)) if rands else None
    if concept_means is not None:
        ins_t = [r["insert_top"] for r in out["digits"].values() if r.get("insert_top") is not None]
        ins_r = [r["insert_random"] for r in out["digits"].values() if r.get("insert_random") is not None]
        out["mean_insert_top"] = float(np.mean(ins_t)) if ins_t else None
        out["mean_insert_random"] = float(np.mean(ins_r)) if ins_r else None
        out["insert_region"] = "central half of the feature map; effect counted in that region"
    return out


def ranking_table(ranking: np.ndarray, k: int = 20) -> dict[str, list[dict]]:
    """digit -> [{unit (from 1, as tally.csv), effect}] for its top-k units, for report.json."""
    table = {}
    for d, name in enumerate(DIGIT_NAMES):
        table[name] = [{"unit": u + 1, "effect": float(np.nan_to_num(ranking[u, d + 1]))}
                       for u in top_units(ranking, d + 1, k)]
    return table

