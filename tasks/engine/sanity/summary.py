"""Numbers of the sanity-check report: per-variant statistics over seeds, best units, claims.

Everything here is computed from the runs' measurements (measure.measure_run); the
only constants are the seed's published figures, which are shown next to ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# --network choices -> the MixtureNet designs trained (the report reads them back from a run's config).
NETWORKS: dict[str, tuple[str, ...]] = {"mixturenet": ("mixturenet",), "seed": ("seed",),
                                        "both": ("mixturenet", "seed")}

SEED_ACCURACY = 0.917
SEED_BEST_UNIT: dict[str, Any] = {
    "layer": "conv3",
    "digit": 0,
    "precision_at_k": {"100": 1.00, "300": 1.00, "500": 1.00, "700": 0.99},
    "precision_at_recall": {"0.25": 0.99, "0.5": 0.98, "0.75": 0.90},
}
ACCURACY_TOLERANCE = 0.03  # |ours - 91.7%| within this counts as agreeing
PRECISION_TOLERANCE = 0.05  # per figure of the seed's digit-0 unit
FOCUS_LAYER = "conv3"  # the layer the variants change; detectors and reliance are read here
# Verdicts on the seed's claims.
REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE = "reproduced", "not reproduced", "inconclusive"


def stat(values: Sequence[float | None]) -> dict:
    """Mean and spread over seeds (sample std; 0 for one seed); None values are left out."""
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"mean": None, "std": None, "min": None, "max": None, "n": 0, "values": []}
    arr = np.asarray(vals)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
        "min": float(arr.min()),
        "max": float(arr.max()),
        "n": len(vals),
        "values": vals,
    }


# -- per run ---------------------------------------------------------------------------------------


def run_figures(run: dict, ap_cutoff: float, layer: str = FOCUS_LAYER) -> dict:
    """The figures one network contributes to its variant's statistics."""
    digits = run["digits"]
    all_units = [u for L in run["layers"].values() for u in L["units"]]
    focus = run["layers"][layer]["units"]
    best_ap_focus = np.max(np.asarray([u["ap"] for u in focus]), axis=0)  # [digits]
    effective = [digits.index(d) for d in run["effective_digits"]]
    return {
        "accuracy": run["val_accuracy"],
        "digits_with_detector": sum(
            1 for k in range(len(digits)) if any(u["ap"][k] >= ap_cutoff for u in all_units)
        ),
        "digits_with_detector_focus": int(np.sum(best_ap_focus >= ap_cutoff)),
        "detector_units": sum(1 for u in all_units if u["best_ap"] >= ap_cutoff),
        "detector_units_focus": sum(1 for u in focus if u["best_ap"] >= ap_cutoff),
        "detector_fraction_focus": sum(1 for u in focus if u["best_ap"] >= ap_cutoff) / max(1, len(focus)),
        "mean_best_ap_focus": float(best_ap_focus[effective].mean()),
        "max_ablation_focus": max(u["ablation"] for u in focus),
        "max_ablation_any": max(u["ablation"] for u in all_units),
        "mean_ablation_focus": float(np.mean([u["ablation"] for u in focus])),
        "best_ap_by_digit_focus": [float(v) for v in best_ap_focus],
    }


def best_units(run: dict) -> list[dict]:
    """Per digit, the unit (any conv layer) with the largest AP for it, laid out like the seed's table."""
    rows = []
    for k, d in enumerate(run["digits"]):
        layer, unit = max(
            ((name, u) for name, L in run["layers"].items() for u in L["units"]),
            key=lambda item: (item[1]["ap"][k], item[0]),
        )
        rows.append({
            "digit": d,
            "layer": layer,
            "unit": unit["unit"],
            "ap": unit["ap"][k],
            "iou": unit["iou"][k],
            "precision_at_k": {K: v[k] for K, v in unit["precision_at_k"].items()},
            "precision_at_recall": {r: v[k] for r, v in unit["precision_at_recall"].items()},
            "ablation": unit["ablation"],
            "ablation_on_digit_classes": unit["ablation_by_digit"].get(str(d)),
            # validation images showing d: precision@K cannot exceed positives / K
            "positives": round(run["digit_frequency"][k] * run["n_val"]),
            "is_best_digit_of_unit": unit["best_digit"] == d,
            "strip": unit["strip"],
            "exemplars": unit["exemplars"],
        })
    return rows


def best_units_over_seeds(runs: list[dict]) -> list[dict]:
    """Per digit, the best unit's figures (best_units) as mean/spread over `runs` (one network's seeds)."""
    per_run = [best_units(r) for r in runs]
    rows = []
    for k, d in enumerate(runs[0]["digits"] if runs else []):
        mine = [rows_of_run[k] for rows_of_run in per_run]
        rows.append({
            "digit": d,
            "units": [f"{row['layer']} u{row['unit']}" for row in mine],
            "ap": stat([row["ap"] for row in mine]),
            "iou": stat([row["iou"] for row in mine]),
            "precision_at_k": {K: stat([row["precision_at_k"].get(K) for row in mine])
                               for K in mine[0]["precision_at_k"]},
            "precision_at_recall": {r: stat([row["precision_at_recall"].get(r) for row in mine])
                                    for r in mine[0]["precision_at_recall"]},
            "ablation": stat([row["ablation"] for row in mine]),
            "positives": stat([row.get("positives") for row in mine]),
        })
    return rows


# -- claims ------------------------------------------------------------------------------------------


def _compare(a: dict, b: dict, *, higher_is: str, min_gap: float) -> tuple[str, float | None]:
    """'a above b' / 'a below b' / 'no clear difference', judged against the seeds' spread."""
    if a["mean"] is None or b["mean"] is None:
        return "not measured", None
    diff = a["mean"] - b["mean"]
    noise = max(a["std"] or 0.0, b["std"] or 0.0, min_gap)
    if abs(diff) <= noise:
        return "no clear difference", diff
    # With one seed there is no spread to judge a difference against.
    caveat = "" if min(a["n"], b["n"]) >= 2 else ", one seed"
    return ("higher" if diff > 0 else "lower") + caveat, diff


def fmt_stat(s: dict, pct: bool = False, digits: int = 3) -> str:
    if s["mean"] is None:
        return "n/a"
    if s["n"] < 2:  # one seed: no spread to show
        return f"{100 * s['mean']:.1f}%" if pct else f"{s['mean']:.{digits}f}"
    if pct:
        return f"{100 * s['mean']:.1f}% ± {100 * s['std']:.1f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def _single_seed(*stats: dict) -> bool:
    return any(s["n"] < 2 for s in stats)


def _shortfall(ours: dict, seed_value: float, tolerance: float) -> str:
    """REPRODUCED when the mean is within `tolerance` of the seed's figure, NOT_REPRODUCED when it is
    further off than tolerance + 2 std (clear of the seeds' spread), INCONCLUSIVE in between or with one seed."""
    if ours["mean"] is None:
        return INCONCLUSIVE
    gap = abs(ours["mean"] - seed_value)
    if gap <= tolerance:
        return REPRODUCED if ours["n"] >= 2 else INCONCLUSIVE
    if ours["n"] >= 2 and gap > tolerance + 2 * ours["std"]:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def _worst(verdicts: list[str]) -> str:
    if NOT_REPRODUCED in verdicts:
        return NOT_REPRODUCED
    return INCONCLUSIVE if INCONCLUSIVE in verdicts or not verdicts else REPRODUCED


def check_claims(variants: dict[str, dict], seeds_best0: list[dict], ap_cutoff: float, *,
                 network: str = "") -> list[dict]:
    """The seed's claims, one by one, with our numbers (for the network titled `network`) and a verdict:
    reproduced, not reproduced or inconclusive (one seed, or a difference within the seeds' spread)."""
    claims: list[dict] = []
    base = variants.get("baseline")
    one_seed_note = "; one seed only, so no verdict."
    if base:
        acc = base["accuracy"]
        gap = acc["mean"] - SEED_ACCURACY
        verdict = _shortfall(acc, SEED_ACCURACY, ACCURACY_TOLERANCE)
        claims.append({
            "claim": "The network (conv 10/20/10 units, GAP, softmax over 45 classes) reaches 91.7% validation "
                     "accuracy.",
            "network": network,
            "ours": f"baseline {fmt_stat(acc, pct=True)} over {acc['n']} seed(s) ({100 * gap:+.1f} points).",
            "verdict": verdict,
            "note": f"reproduced: the mean is within {100 * ACCURACY_TOLERANCE:.0f} points of 91.7%; not reproduced: "
                    "further off than that plus twice the seeds' spread" + (one_seed_note if acc["n"] < 2 else "."),
        })
    if seeds_best0:
        figures, verdicts = [], []
        for group, label in (("precision_at_k", "P@"), ("precision_at_recall", "P@R=")):
            for key, seed_value in SEED_BEST_UNIT[group].items():
                ours = stat([row[group].get(key) for row in seeds_best0])
                verdicts.append(_shortfall(ours, seed_value, PRECISION_TOLERANCE))
                figures.append(f"{label}{key} {fmt_stat(ours, digits=2)} (seed {seed_value:.2f})")
        detector_in_all = all(row["ap"] >= ap_cutoff for row in seeds_best0)
        layers = sorted({row["layer"] for row in seeds_best0})
        positives = stat([row.get("positives") for row in seeds_best0])
        verdict = _worst(verdicts)
        claims.append({
            "claim": "A conv3 unit detects digit 0: precision@100/300/500/700 = 1.00/1.00/1.00/0.99; "
                     "precision at recall 0.25/0.5/0.75 = 0.99/0.98/0.90.",
            "network": network,
            "ours": f"best unit for 0 (layer {'/'.join(layers)}), over {len(seeds_best0)} "
                    f"seed(s): " + "; ".join(figures)
                    + f"; a detector (AP >= {ap_cutoff}) in {'every' if detector_in_all else 'not every'} seed; "
                    f"{positives['mean']:.0f} validation images show a 0.",
            "verdict": verdict,
            "note": f"reproduced: every figure within {PRECISION_TOLERANCE:.2f} of the seed's; not reproduced: some "
                    "figure further off than that plus twice the seeds' spread"
                    + (one_seed_note if len(seeds_best0) < 2 else "."),
        })
    wide = variants.get("wide")
    if base and wide:
        verdict, diff = _compare(wide["mean_best_ap_focus"], base["mean_best_ap_focus"], higher_is="better",
                                 min_gap=0.01)
        d_verdict, _ = _compare(wide["digits_with_detector_focus"], base["digits_with_detector_focus"],
                                higher_is="better", min_gap=0.5)
        agrees = verdict == "higher" and not d_verdict.startswith("lower")
        one = _single_seed(wide["mean_best_ap_focus"], base["mean_best_ap_focus"])
        claims.append({
            "claim": "Tripling conv3's width gives better disentanglement.",
            "network": network,
            "ours": f"mean best AP per digit in conv3: wide {fmt_stat(wide['mean_best_ap_focus'])} vs baseline "
                    f"{fmt_stat(base['mean_best_ap_focus'])} ({verdict}); digits with a conv3 detector: wide "
                    f"{fmt_stat(wide['digits_with_detector_focus'], digits=1)} vs "
                    f"{fmt_stat(base['digits_with_detector_focus'], digits=1)} ({d_verdict}).",
            "verdict": INCONCLUSIVE if one or verdict == "no clear "
                                                         "difference" else (REPRODUCED if agrees else NOT_REPRODUCED),
            "note": "a difference counts only when larger than the seeds' spread (std) and 0.01 AP / 0.5 digits"
                    + (one_seed_note if one else "."),
        })
        verdict, _ = _compare(wide["max_ablation_focus"], base["max_ablation_focus"], higher_is="worse", min_gap=0.005)
        claims.append({
            "claim": "Tripling conv3's width gives less reliance on single units.",
            "network": network,
            "ours": f"largest accuracy loss from zeroing one conv3 unit: wide "
                    f"{fmt_stat(wide['max_ablation_focus'], pct=True)} "
                    f"vs baseline {fmt_stat(base['max_ablation_focus'], pct=True)} ({verdict}).",
            "verdict": {"lower": REPRODUCED, "higher": NOT_REPRODUCED}.get(verdict, INCONCLUSIVE),
            "note": "a difference counts only when larger than the seeds' spread and 0.5 points"
                    + (one_seed_note if "one seed" in verdict else "."),
        })
    for with_drop, without in (("dropout", "baseline"), ("wide_dropout", "wide")):
        a, b = variants.get(with_drop), variants.get(without)
        if not (a and b):
            continue
        parts, changed = [], []
        for key, label, gap, digits in (
            ("mean_best_ap_focus", "mean best AP per digit", 0.01, 3),
            ("detector_units_focus", "conv3 detector units", 0.5, 1),
            ("max_ablation_focus", "largest single-unit ablation", 0.005, 1),
            ("accuracy", "accuracy", 0.005, 1),
        ):
            verdict, _ = _compare(a[key], b[key], higher_is="", min_gap=gap)
            pct = key in ("max_ablation_focus", "accuracy")
            parts.append(f"{label}: {fmt_stat(a[key], pct=pct, digits=digits)} vs "
                         f"{fmt_stat(b[key], pct=pct, digits=digits)} ({verdict})")
            if verdict.startswith(("higher", "lower")):
                changed.append(f"{label} {verdict.split(',')[0]}")
        one = _single_seed(a["accuracy"], b["accuracy"])
        claims.append({
            "claim": f"Dropout on conv3 changes how units act as digit detectors ({with_drop} vs {without}).",
            "network": network,
            "ours": "; ".join(parts) + ".",
            "verdict": INCONCLUSIVE if one else (REPRODUCED if changed else NOT_REPRODUCED),
            "note": ("one seed only, so no verdict; " if one else "")
                    + (("with dropout: " + ", ".join(changed)) if changed else
                       "no figure moved beyond the seeds' spread")
                    + "; the seed gives no direction to test against.",
        })
    return claims
