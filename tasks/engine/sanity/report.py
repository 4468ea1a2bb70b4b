"""The sanity-check report: the summary dict (report.json), Markdown, HTML and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from . import plots
from .summary import (
    NETWORKS,
    FOCUS_LAYER, SEED_ACCURACY, SEED_BEST_UNIT, fmt_stat, best_units, best_units_over_seeds, check_claims, run_figures,
    stat,
)

SOURCE_TEXT = {
    "digits": "scikit-learn's bundled handwritten digits (8x8, 1,797 images), upscaled bilinearly to 28x28 px",
}
VARIANT_TITLES = {"baseline": "baseline", "dropout": "dropout on conv3", "wide": "conv3 x3 wider",
                  "wide_dropout": "conv3 x3 wider + dropout"}
SEED_COLOUR = (220, 20, 60)  # the seed's published unit: drawn thick, in a colour no digit uses
FIGURE_KEYS = ("accuracy", "digits_with_detector", "digits_with_detector_focus", "detector_units",
               "detector_units_focus", "detector_fraction_focus", "mean_best_ap_focus", "max_ablation_focus",
               "max_ablation_any", "mean_ablation_focus")


def source_text(source: str) -> str:
    if source in SOURCE_TEXT:
        return SOURCE_TEXT[source]
    if source.startswith("idx:"):
        return f"MNIST-format IDX files at {source[4:]} (28x28 digits)"
    return source


NETWORK_TITLES = {"mixturenet": "MixtureNet (ours: BatchNorm, strided conv1)",
                  "seed": "the seed's network (no BatchNorm, no stride)"}


def summarise(*, config: dict, runs: list[dict], data: dict[str, str]) -> dict:
    """The report dict from the runs' measurements (nothing here is a constant but the seed's figures).

    Each network trained (config["network"]: mixturenet, seed or both) gets its own section under
    report["networks"]; the claims list holds every claim once per network.
    """
    cutoff = config["ap_cutoff"]
    designs = NETWORKS.get(config.get("network", "mixturenet"), ("mixturenet",))
    networks = {}
    for design in designs:
        mine = [r for r in runs if r.get("design", "mixturenet") == design]
        if mine:
            networks[design] = _network_section(design, config, mine, cutoff)
    claims = [c for section in networks.values() for c in section.pop("claims")]
    report = {
        "title": "Mixture-of-digits sanity check",
        "config": config,
        "source": config["source"],
        "source_text": source_text(config["source"]),
        "seed_paper": {"accuracy": SEED_ACCURACY, "best_unit": SEED_BEST_UNIT},
        "ap_cutoff": cutoff,
        "focus_layer": FOCUS_LAYER,
        "networks": networks,
        "claims": claims,
        "runs": runs,
        "data": data,
    }
    report["headline"] = _headline(report)
    return report


def _network_section(design: str, config: dict, runs: list[dict], cutoff: float) -> dict:
    main_runs = [r for r in runs if r["experiment"] == "variants"]
    useful_runs = [r for r in runs if r["experiment"] == "usefulness"]
    variants: dict[str, dict] = {}
    for name in config["variants"]:
        mine = sorted((r for r in main_runs if r["variant"] == name), key=lambda r: r["seed"])
        if not mine:
            continue
        figures = [run_figures(r, cutoff) for r in mine]
        entry: dict[str, Any] = {key: stat([f[key] for f in figures]) for key in FIGURE_KEYS}
        entry.update(title=VARIANT_TITLES[name], width=mine[0]["width"], dropout=mine[0]["dropout"],
                     conv3_units=mine[0]["layers"]["conv3"]["num_units"], runs=[r["id"] for r in mine])
        variants[name] = entry
    baseline = sorted((r for r in main_runs if r["variant"] == "baseline"), key=lambda r: r["seed"])
    reference = baseline[0] if baseline else (main_runs[0] if main_runs else None)
    seeds_best0 = [row for r in baseline for row in best_units(r) if row["digit"] == 0]
    title = NETWORK_TITLES.get(design, design)
    return {
        "design": design,
        "title": title,
        "setting": _setting(config, reference),
        "variants": variants,
        "reference_run": reference["id"] if reference else None,
        "best_units": best_units(reference) if reference else [],
        "best_units_over_seeds": best_units_over_seeds(baseline),
        "baseline_runs": [r["id"] for r in baseline],
        "false_positives": _false_positives(baseline),
        "claims": check_claims(variants, seeds_best0, cutoff, network=title),
        "usefulness": _usefulness(useful_runs, main_runs, cutoff) if useful_runs else None,
    }


def _false_positives(runs: list[dict]) -> dict:
    """Per digit: which digits the top-K images without it show (mean over the runs), for the best unit."""
    out: dict = {}
    for run in runs:
        for d, entry in (run.get("false_positives") or {}).items():
            for K, fp in entry["top"].items():
                slot = out.setdefault(d, {}).setdefault(K, {"n_false": [], "shows": []})
                slot["n_false"].append(fp["n_false"])
                slot["shows"].append(fp["shows"])
    return {d: {K: {"n_false": stat(v["n_false"]),
                    "shows": [float(np.mean([row[k] for row in v["shows"]])) for k in range(len(v["shows"][0]))]}
                for K, v in by_k.items()} for d, by_k in out.items()}


def _setting(config: dict, reference: dict | None) -> dict:
    recipe = (reference or {}).get("recipe") or {}
    return {
        "classes": reference["num_classes"] if reference else None,
        "n_train": config["n_train"],
        "n_val": config["n_val"],
        "val_note": "built only from source digits never used in training: the source's digits are split "
                    "once per digit, 20% kept for validation",
        "layers": {name: L["num_units"] for name, L in reference["layers"].items()} if reference else {},
        "network": reference.get("network", "") if reference else "",
        "epochs": recipe.get("epochs", config["epochs"]),
        "recipe": recipe,
        "canvas": config["canvas"],
        "digit_size": config["digit_size"],
        "dropout": config["dropout"],
        "wide": config["wide"],
        "score": "a unit ranks images by the spatial maximum of its activation map",
        "iou_images": reference["n_iou"] if reference and "n_iou" in reference else config.get("n_val"),
        "ablation_images": reference["n_ablation"] if reference else config.get("n_val"),
        "lr": recipe.get("lr", config.get("lr")),
        "batch_size": recipe.get("batch_size", config.get("batch_size")),
    }


def _usefulness(useful_runs: list[dict], main_runs: list[dict], cutoff: float) -> dict:
    """Digits 8 and 9 shown at random in all classes: do detectors for them still emerge?"""
    digits = useful_runs[0]["digits"]
    redundant = [d for d in digits if d not in useful_runs[0]["effective_digits"]]
    per_digit: dict[str, dict[str, Any]] = {}
    for d in digits:
        k = digits.index(d)
        best = stat([max(u["ap"][k] for u in r["layers"][FOCUS_LAYER]["units"]) for r in useful_runs])
        units = stat([sum(1 for u in r["layers"][FOCUS_LAYER]["units"] if u["ap"][k] >= cutoff) for r in useful_runs])
        base = [r for r in main_runs if r["variant"] == "baseline"]
        base_best = stat([max(u["ap"][k] for u in r["layers"][FOCUS_LAYER]["units"]) for r in base])
        freq = stat([r["digit_frequency"][k] for r in useful_runs])
        # Accuracy lost when the best unit for d is zeroed: a redundant digit's detector should cost ~nothing.
        abl = stat([max(r["layers"][FOCUS_LAYER]["units"], key=lambda u: u["ap"][k])["ablation"] for r in useful_runs])
        per_digit[str(d)] = {"best_ap": best, "detector_units": units, "baseline_best_ap": base_best,
                             "frequency": freq, "best_unit_ablation": abl, "redundant": d in redundant}
    ap_red = [per_digit[str(d)]["best_ap"]["mean"] for d in redundant]
    ap_eff = [per_digit[str(d)]["best_ap"]["mean"] for d in digits if d not in redundant]
    emerged = {str(d): all(v >= cutoff for v in per_digit[str(d)]["best_ap"]["values"]) for d in redundant}
    some = {str(d): any(v >= cutoff for v in per_digit[str(d)]["best_ap"]["values"]) for d in redundant}
    answer = []
    for d in redundant:
        p = per_digit[str(d)]
        state = "in every seed" if emerged[str(d)] else ("in some seeds" if some[str(d)] else "in no seed")
        spread = f" ± {p['best_ap']['std']:.3f}" if p["best_ap"]["n"] > 1 else ""
        base = p["baseline_best_ap"]["mean"]
        answer.append(
            f"digit {d}: a conv3 detector (AP >= {cutoff}) emerges {state}; best AP {p['best_ap']['mean']:.3f}{spread} "
            f"(present in {100 * p['frequency']['mean']:.0f}% of images; the same digit in the baseline, where it is "
            f"part of the classes: {'n/a' if base is None else f'{base:.3f}'})"
        )
    if ap_red and ap_eff:
        answer.append(
            f"for comparison, the task's digits {min(d for d in digits if d not in redundant)}-"
            f"{max(d for d in digits if d not in redundant)} reach a mean best conv3 AP of {np.mean(ap_eff):.3f} in "
            f"the "
            f"same networks, the redundant ones {np.mean(ap_red):.3f}"
        )
    return {
        "classes": useful_runs[0]["num_classes"],
        "redundant": redundant,
        "effective_digits": useful_runs[0]["effective_digits"],
        "accuracy": stat([r["val_accuracy"] for r in useful_runs]),
        "n_train": useful_runs[0].get("n_train"),
        "n_val": useful_runs[0].get("n_val"),
        "per_digit": per_digit,
        "mean_best_ap_redundant": float(np.mean(ap_red)) if ap_red else None,
        "mean_best_ap_effective": float(np.mean(ap_eff)) if ap_eff else None,
        "emerged": emerged,
        "answer": answer,
        "runs": [r["id"] for r in useful_runs],
    }


def _headline(report: dict) -> list[str]:
    lines = [f"source: {report['source_text']}"]
    for section in report["networks"].values():
        for _name, v in section["variants"].items():
            prefix = f"{section['design']} " if len(report["networks"]) > 1 else ""
            lines.append(
                f"{prefix}{v['title']}: accuracy {fmt_stat(v['accuracy'], pct=True)} "
                f"(seed paper {100 * SEED_ACCURACY:.1f}%), digits with a detector "
                f"{v['digits_with_detector']['mean']:.1f}, "
                f"conv3 detector units {v['detector_units_focus']['mean']:.1f}/{v['conv3_units']}"
            )
    for c in report["claims"]:
        lines.append(f"[{c['verdict']}] ({c['network']}) {c['claim']}")
    return lines


# -- plots ---------------------------------------------------------------------------------------


def make_plots(report: dict, out_dir: Path) -> dict[str, str]:
    """PNG plots under out_dir/plots; returns name -> path relative to out_dir.

    Per network `<design>_...` (best units, usefulness, top images); the variant charts put the
    networks side by side as series."""
    pdir = out_dir / "plots"
    made: dict[str, str] = {}
    for design, section in report["networks"].items():
        made.update(_best_unit_plots(section, pdir, design))
        useful = section.get("usefulness")
        if useful:
            per_digit = useful["per_digit"]
            digits = [int(d) for d in per_digit]
            series = {
                "all digits in classes (baseline)": [
                    (_nan(per_digit[str(d)]["baseline_best_ap"]["mean"]),
                     per_digit[str(d)]["baseline_best_ap"]["std"] or 0.0) for d in digits],
                f"{'+'.join(map(str, useful['redundant']))} redundant": [
                    (per_digit[str(d)]["best_ap"]["mean"], per_digit[str(d)]["best_ap"]["std"]) for d in digits],
            }
            made[f"{design}_usefulness"] = plots.bar_chart(
                pdir / f"{design}_usefulness_best_ap.png", [str(d) for d in digits], series,
                title=f"{section['design']}: best conv3 AP per digit, redundant digits vs the baseline",
                y_label="AP", y_range=(0.0, 1.0), size=(700, 380)).name
        made.update(_top_image_plots(report, section, out_dir, pdir, design))
    names = [name for name in report["config"]["variants"]
             if any(name in section["variants"] for section in report["networks"].values())]
    if names:
        groups = [VARIANT_TITLES[n].replace("conv3 ", "").replace("dropout on conv3", "dropout") for n in names]
        for key, title, label, y_range in (
            ("accuracy", "Validation accuracy (bars: mean, whiskers: ±std over seeds)", "accuracy", (0.0, 1.0)),
            ("digits_with_detector", f"Digits with a detector (AP >= {report['ap_cutoff']}, any conv layer)", "digits",
             (0.0, 10.0)),
            ("detector_units_focus", f"conv3 units that are detectors (AP >= {report['ap_cutoff']})", "units", None),
            ("mean_best_ap_focus", "Disentanglement: mean over digits of the best conv3 AP", "AP", (0.0, 1.0)),
            ("max_ablation_focus", "Reliance: largest accuracy loss from zeroing one conv3 unit", "accuracy lost",
             None),
        ):
            values = {
                design: [(section["variants"][n][key]["mean"], section["variants"][n][key]["std"])
                         if n in section["variants"] else (float("nan"), 0.0) for n in names]
                for design, section in report["networks"].items()
            }
            made[f"variants_{key}"] = plots.bar_chart(pdir / f"variants_{key}.png", groups, values, title=title,
                                                      y_label=label, y_range=y_range).name
    return {k: f"plots/{v}" for k, v in made.items()}


def _best_unit_plots(section: dict, pdir: Path, design: str) -> dict[str, str]:
    """Precision@K and precision at recall of the best unit per digit (mean over the baseline seeds)."""
    best = section["best_units_over_seeds"]
    if not best:
        return {}
    made = {}
    for group, xs_of, name, title, x_label in (
        ("precision_at_k", lambda keys: sorted(int(k) for k in keys), "precision_at_k",
         "Precision@K of the best unit per digit", "K (top-ranked validation images)"),
        ("precision_at_recall", lambda keys: sorted(float(k) for k in keys), "precision_at_recall",
         "Precision at recall of the best unit per digit", "recall"),
    ):
        xs = xs_of(best[0][group])
        series = {f"digit {r['digit']}": (xs, [_nan(r[group][_key(x)]["mean"]) for x in xs]) for r in best}
        series["seed: digit 0"] = (xs, [SEED_BEST_UNIT[group][_key(x)] for x in xs])
        made[f"{design}_{name}"] = plots.line_chart(
            pdir / f"{design}_{name}.png", series, title=f"{section['design']}: {title} (mean over seeds)",
            axis_labels=(x_label, "precision"), size=(640, 420), colours={"seed: digit 0": SEED_COLOUR}).name
    return made


def _top_image_plots(report: dict, section: dict, out_dir: Path, pdir: Path, design: str,
                     per_unit: int = 8) -> dict[str, str]:
    made = {}
    if section["best_units"]:
        rows = [(f"{r['digit']}: {r['layer']} u{r['unit']}", _pictures(out_dir, r["exemplars"][:per_unit]))
                for r in section["best_units"]]
        made[f"{design}_top_images_best"] = plots.picture_rows(
            pdir / f"{design}_top_images_best_units.png", rows,
            title=f"{section['design']}: top activated images of the best unit per digit").name
    reference = next((r for r in report["runs"] if r["id"] == section["reference_run"]), None)
    for name, layer in (reference or {}).get("layers", {}).items():
        rows = [(f"u{u['unit']} {u['best_digit']} AP {u['best_ap']:.2f}", _pictures(out_dir, u["exemplars"][:per_unit]))
                for u in layer["units"]]
        made[f"{design}_top_images_{name}"] = plots.picture_rows(
            pdir / f"{design}_top_images_{name}.png", rows, label_width=130,
            title=f"{section['design']} {name}: top activated images per unit (label: best digit and its AP)").name
    return made


def _pictures(out_dir: Path, paths: list[str]) -> list[np.ndarray]:
    pics = []
    for p in paths:
        with Image.open(out_dir / p) as im:
            pics.append(np.asarray(im.convert("RGB")))
    return pics


def _key(x: float) -> str:
    return f"{x:g}"


def _nan(v):
    return float("nan") if v is None else v


# -- Markdown and HTML --------------------------------------------------------------------------------


def write_report(report: dict, out_dir: Path) -> None:
    """report.md and report.html (plots included); report.json is written by the caller."""
    report["plots"] = make_plots(report, out_dir)
    from .render import to_html, to_markdown

    (out_dir / "report.md").write_text(to_markdown(report), encoding="utf-8")
    (out_dir / "report.html").write_text(to_html(report), encoding="utf-8")
    report["files"] = sorted(
        str(p.relative_to(out_dir)) for p in out_dir.rglob("*")
        if p.is_file() and p.relative_to(out_dir).parts[0] != "data" and p.suffix != ".pt"
    ) + ["report.json"]


__all__ = ["summarise", "write_report", "make_plots", "source_text"]
