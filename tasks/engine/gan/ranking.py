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

    ``specificity`` is the 10 x 10 matrix of GAN Dissection's claim: row d = the digit whose top-k
    units are removed, column c = the share of digit c's pixels removed (None where c was not
    generated); ``specificity_random`` the same with k random units per row.

    Returns a JSON-able dict whose unit numbers count from 1, as tally.csv does.
    """
    shape = layer_shape(generator, layer)
    k = min(k, shape.units)
    rng = np.random.default_rng(seed)
    random_units = sorted(int(u) for u in rng.choice(shape.units, size=k, replace=False))
    removed_random = causal_effect(generator, segmenter, Intervention(layer, random_units), base,
                                   batch_size=EFFECT_BATCH, shape=shape)
    region = centre_region(shape.feature)
    specificity: list[list[float | None]] = []
    specificity_random: list[list[float | None]] = []
    random_sets: list[list[int]] = []
    out: dict = {"layer": layer, "k": k, "units_in_layer": shape.units, "random_units": [u + 1 for u in random_units],
                 "unit_numbering": "from 1, as tally.csv",
                 "n_images": len(base.z), "eval_seed": base.seed, "digits": {}}
    for d, name in enumerate(DIGIT_NAMES):
        number = d + 1
        top = top_units(ranking, number, k)
        removed_top = causal_effect(generator, segmenter, Intervention(layer, top), base, batch_size=EFFECT_BATCH,
                                    shape=shape)
        specificity.append(_shares_removed(removed_top))
        # A random set of its own per row (drawn from the seed and the digit), so the random baseline
        # is as many independent sets as there are rows, not one set repeated.
        row_random = sorted(int(u) for u in np.random.default_rng([seed, number]).choice(shape.units, size=k,
                                                                                           replace=False))
        random_sets.append([u + 1 for u in row_random])
        specificity_random.append(_shares_removed(causal_effect(
            generator, segmenter, Intervention(layer, row_random), base, batch_size=EFFECT_BATCH, shape=shape)))
        row = {
            "top_units": [u + 1 for u in top],
            "pixels_before": int(removed_top.before[number]),
            "remove_top": removed_top.of(number),
            "remove_random": removed_random.of(number),
            "overlap_with_random": len(set(top) & set(random_units)),
        }
        if concept_means is not None:
            for key, units in (("top", top), ("random", random_units)):
                values = np.maximum(concept_means[units, d], 0.0)
                iv = Intervention(layer, units, "insert", values=values, region=region)
                inserted = causal_effect(generator, segmenter, iv, base, batch_size=EFFECT_BATCH, shape=shape)
                row[f"insert_{key}"] = inserted.of(number)
                row[f"insertion_{key}"] = insertion_outcome(inserted, base, number)
        out["digits"][name] = row
    out["specificity"] = specificity
    out["specificity_random"] = specificity_random
    out["specificity_random_units"] = random_sets  # per row, from 1
    out["specificity_summary"] = specificity_summary(specificity)
    out["specificity_random_summary"] = specificity_summary(specificity_random)
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
        rates_t = [r["insertion_top"]["rate"] for r in out["digits"].values() if r["insertion_top"]["rate"] is not None]
        rates_r = [r["insertion_random"]["rate"] for r in out["digits"].values()
                   if r["insertion_random"]["rate"] is not None]
        out["insertion_rates"] = {name: {"top": r["insertion_top"]["rate"], "random": r["insertion_random"]["rate"],
                                         "samples": r["insertion_top"]["samples"]}
                                  for name, r in out["digits"].items()}
        out["mean_insertion_rate_top"] = float(np.mean(rates_t)) if rates_t else None
        out["mean_insertion_rate_random"] = float(np.mean(rates_r)) if rates_r else None
        out["insertion_rule"] = (f"an insertion succeeds on a sample that shows none of the digit when at least "
                                 f"{INSERT_MIN_PIXELS} of the region's pixels become that digit; the rate is over "
                                 f"those samples")
    return out


INSERT_MIN_PIXELS = 10  # new pixels of the digit in the region: about a third of a generated digit's strokes
EXAMPLES = 4  # failed and succeeded samples kept per digit for the report's pictures


def insertion_outcome(effect, base: Baseline, number: int) -> dict:
    """Per sample that shows none of label ``number``: did the insertion make at least INSERT_MIN_PIXELS
    of it inside the region? The rate over those samples, examples of both outcomes (sample indices of
    the baseline), and the context: other digits' pixels in the region before, failed vs succeeded."""
    absent = ~(base.labels == number).flatten(1).any(1).numpy()
    gained = effect.after_per_image[:, number] - effect.before_per_image[:, number]
    made = gained >= INSERT_MIN_PIXELS
    other = effect.before_per_image[:, 1:].sum(1) - effect.before_per_image[:, number]
    failed, succeeded = np.flatnonzero(absent & ~made), np.flatnonzero(absent & made)

    def mean(idx: np.ndarray) -> float | None:
        return float(other[idx].mean()) if len(idx) else None

    n = int(absent.sum())
    return {"samples": n, "succeeded": len(succeeded), "rate": len(succeeded) / n if n else None,
            "failed_examples": [int(i) for i in failed[:EXAMPLES]],
            "succeeded_examples": [int(i) for i in succeeded[:EXAMPLES]],
            "other_digit_pixels_in_region_failed": mean(failed),
            "other_digit_pixels_in_region_succeeded": mean(succeeded)}


def _shares_removed(effect) -> list[float | None]:
    """One specificity row: the share of each digit's pixels removed (None where a digit was not generated)."""
    return [effect.of(d + 1) for d in range(len(DIGIT_NAMES))]


DIAGONAL_AT_LEAST, OFF_DIAGONAL_AT_MOST = 0.8, 0.2  # a digit's units remove it and little of the others


def specificity_summary(matrix: list[list[float | None]]) -> dict:
    """Per row (a digit whose units were removed): the diagonal, the largest off-diagonal share, and
    whether the row is specific (diagonal >= 0.8, every off-diagonal <= 0.2); digits never generated
    count as not specific."""
    rows = []
    for d, row in enumerate(matrix):
        off = [v for c, v in enumerate(row) if c != d and v is not None]
        diag = row[d]
        worst = max(off) if off else None
        specific = diag is not None and diag >= DIAGONAL_AT_LEAST and (worst is None or worst <= OFF_DIAGONAL_AT_MOST)
        rows.append({"digit": DIGIT_NAMES[d], "diagonal": diag, "max_off_diagonal": worst, "specific": specific})
    return {"rule": f"diagonal >= {DIAGONAL_AT_LEAST} and every off-diagonal <= {OFF_DIAGONAL_AT_MOST}",
            "specific_digits": sum(r["specific"] for r in rows), "rows": rows}


def ranking_table(ranking: np.ndarray, k: int = 20) -> dict[str, list[dict]]:
    """digit -> [{unit (from 1, as tally.csv), effect}] for its top-k units, for report.json."""
    table = {}
    for d, name in enumerate(DIGIT_NAMES):
        table[name] = [{"unit": u + 1, "effect": float(np.nan_to_num(ranking[u, d + 1]))}
                       for u in top_units(ranking, d + 1, k)]
    return table

