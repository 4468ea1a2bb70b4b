"""The sanity-check report: the summary dict (report.json), Markdown, HTML and PNG plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from . import plots
from .summary import (
    FOCUS_LAYER, SEED_ACCURACY, SEED_BEST_UNIT, _fmt, best_units, check_claims, run_figures, stat,
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


def summarise(*, config: dict, runs: list[dict], data: dict[str, str]) -> dict:
    """The report dict from the runs' measurements (nothing here is a constant but the seed's figures)."""
    cutoff = config["ap_cutoff"]
    main_runs = [r for r in runs if r["experiment"] == "variants"]
    useful_runs = [r for r in runs if r["experiment"] == "usefulness"]
    variants: dict[str, dict] = {}
    for name in config["variants"]:
        mine = sorted((r for r in main_runs if r["variant"] == name), key=lambda r: r["seed"])
        if not mine:
            continue
        figures = [run_figures(r, cutoff) for r in mine]
        entry = {key: stat([f[key] for f in figures]) for key in FIGURE_KEYS}
        entry.update(title=VARIANT_TITLES[name], width=mine[0]["width"], dropout=mine[0]["dropout"],
                     conv3_units=mine[0]["layers"]["conv3"]["num_units"], runs=[r["id"] for r in mine])
        variants[name] = entry

    reference = next((r for r in main_runs if r["variant"] == "baseline"), main_runs[0] if main_runs else None)
    reference_best = best_units(reference) if reference else []
    seeds_best0 = [row for r in main_runs if r["variant"] == "baseline" for row in best_units(r) if row["digit"] == 0]

    report = {
        "title": "Mixture-of-digits sanity check",
        "config": config,
        "source": config["source"],
        "source_text": source_text(config["source"]),
        "seed_paper": {"accuracy": SEED_ACCURACY, "best_unit": SEED_BEST_UNIT},
        "setting": _setting(config, reference),
        "ap_cutoff": cutoff,
        "focus_layer": FOCUS_LAYER,
        "variants": variants,
        "reference_run": reference["id"] if reference else None,
        "best_units": reference_best,
        "claims": check_claims(variants, reference_best, seeds_best0, cutoff),
        "usefulness": _usefulness(useful_runs, main_runs, cutoff) if useful_runs else None,
        "runs": runs,
        "data": data,
    }
    report["headline"] = _headline(report)
    return report


def _setting(config: dict, reference: dict | None) -> dict:
    return {
        "classes": reference["num_classes"] if reference else None,
        "n_train": config["n_train"],
        "n_val": config["n_val"],
        "val_note": "built only from source digits never used in training: the source's digits are split "
                    "once per digit, 20% kept for validation",
        "layers": {name: L["num_units"] for name, L in reference["layers"].items()} if reference else {},
        "network": f"MixtureNet: {reference.get('network', '')}" if reference else "MixtureNet",
        "epochs": config["epochs"],
        "canvas": config["canvas"],
        "digit_size": config["digit_size"],
        "dropout": config["dropout"],
        "wide": config["wide"],
        "score": "a unit ranks images by the spatial maximum of its activation map",
        "iou_images": reference["n_iou"] if reference and "n_iou" in reference else config.get("n_val"),
        "ablation_images": reference["n_ablation"] if reference else config.get("n_val"),
        "lr": config.get("lr"),
        "batch_size": config.get("batch_size"),
    }


def _usefulness(useful_runs: list[dict], main_runs: list[dict], cutoff: float) -> dict:
    """Digits 8 and 9 shown at random in all classes: do detectors for them still emerge?"""
    digits = useful_runs[0]["digits"]
    redundant = [d for d in digits if d not in useful_runs[0]["effective_digits"]]
    per_digit = {}
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
            f"{max(d for d in digits if d not in redundant)} reach a mean best conv3 AP of {np.mean(ap_eff):.3f} in the "
            f"same networks, the redundant ones {np.mean(ap_red):.3f}"
        )
    return {
        "classes": useful_runs[0]["num_classes"],
        "redundant": redundant,
        "effective_digits": useful_runs[0]["effective_digits"],
        "accuracy": stat([r["val_accuracy"] for r in useful_runs]),
        "per_digit": per_digit,
        "mean_best_ap_redundant": float(np.mean(ap_red)) if ap_red else None,
        "mean_best_ap_effective": float(np.mean(ap_eff)) if ap_eff else None,
        "emerged": emerged,
        "answer": answer,
        "runs": [r["id"] for r in useful_runs],
    }


def _headline(report: dict) -> list[str]:
    lines = [f"source: {report['source_text']}"]
    for name, v in report["variants"].items():
        lines.append(
            f"{v['title']}: accuracy {_fmt(v['accuracy'], pct=True)} "
            f"(seed paper {100 * SEED_ACCURACY:.1f}%), digits with a detector {v['digits_with_detector']['mean']:.1f}, "
            f"conv3 detector units {v['detector_units_focus']['mean']:.1f}/{v['conv3_units']}"
        )
    for c in report["claims"]:
        lines.append(f"[{c['verdict']}] {c['claim']}")
    return lines


# -- plots ---------------------------------------------------------------------------------------


def make_plots(report: dict, out_dir: Path) -> dict[str, str]:
    """PNG plots under out_dir/plots; returns name -> path relative to out_dir."""
    pdir = out_dir / "plots"
    made: dict[str, str] = {}
    best = report["best_units"]
    if best:
        ks = sorted(int(k) for k in best[0]["precision_at_k"])
        series = {f"{r['digit']}: {r['layer']} u{r['unit']}": (ks, [r["precision_at_k"][str(k)] for k in ks]) for r in best}
        series["seed: digit 0"] = (ks, [SEED_BEST_UNIT["precision_at_k"][str(k)] for k in ks])
        made["precision_at_k"] = plots.line_chart(
            pdir / "precision_at_k.png", series, title="Precision@K of the best unit per digit (reference run)",
            x_label="K (top-ranked validation images)", y_label="precision", size=(640, 420),
            colours={"seed: digit 0": SEED_COLOUR}).name
        rs = sorted(float(r) for r in best[0]["precision_at_recall"])
        series = {f"{r['digit']}: {r['layer']} u{r['unit']}": (rs, [r["precision_at_recall"][_key(x)] for x in rs]) for r in best}
        series["seed: digit 0"] = (rs, [SEED_BEST_UNIT["precision_at_recall"][_key(x)] for x in rs])
        made["precision_at_recall"] = plots.line_chart(
            pdir / "precision_at_recall.png", series, title="Precision at recall of the best unit per digit",
            x_label="recall", y_label="precision", size=(640, 420), colours={"seed: digit 0": SEED_COLOUR}).name
    variants = report["variants"]
    if variants:
        groups = [v["title"].replace("conv3 ", "").replace("dropout on conv3", "dropout") for v in variants.values()]
        for key, title, label, y_range in (
            ("accuracy", "Validation accuracy (bars: mean, whiskers: ±std over seeds)", "accuracy", (0.0, 1.0)),
            ("digits_with_detector", f"Digits with a detector (AP >= {report['ap_cutoff']}, any conv layer)", "digits", (0.0, 10.0)),
            ("detector_units_focus", f"conv3 units that are detectors (AP >= {report['ap_cutoff']})", "units", None),
            ("mean_best_ap_focus", "Disentanglement: mean over digits of the best conv3 AP", "AP", (0.0, 1.0)),
            ("max_ablation_focus", "Reliance: largest accuracy loss from zeroing one conv3 unit", "accuracy lost", None),
        ):
            values = {label: [(v[key]["mean"], v[key]["std"]) for v in variants.values()]}
            made[f"variants_{key}"] = plots.bar_chart(pdir / f"variants_{key}.png", groups, values, title=title,
                                                      y_label=label, y_range=y_range).name
    useful = report.get("usefulness")
    if useful:
        digits = [int(d) for d in useful["per_digit"]]
        series = {
            "all digits in classes (baseline)": [(_nan(useful["per_digit"][str(d)]["baseline_best_ap"]["mean"]),
                                                  useful["per_digit"][str(d)]["baseline_best_ap"]["std"] or 0.0) for d in digits],
            f"{'+'.join(map(str, useful['redundant']))} redundant": [(useful["per_digit"][str(d)]["best_ap"]["mean"],
                                                                      useful["per_digit"][str(d)]["best_ap"]["std"]) for d in digits],
        }
        made["usefulness"] = plots.bar_chart(pdir / "usefulness_best_ap.png", [str(d) for d in digits], series,
                                             title="Best conv3 AP per digit: redundant digits vs the baseline",
                                             y_label="AP", y_range=(0.0, 1.0), size=(700, 380)).name
    made.update(_top_image_plots(report, out_dir, pdir))
    return {k: f"plots/{v}" for k, v in made.items()}


def _top_image_plots(report: dict, out_dir: Path, pdir: Path, per_unit: int = 8) -> dict[str, str]:
    made = {}
    if report["best_units"]:
        rows = [(f"{r['digit']}: {r['layer']} u{r['unit']}", _pictures(out_dir, r["exemplars"][:per_unit]))
                for r in report["best_units"]]
        made["top_images_best"] = plots.picture_rows(pdir / "top_images_best_units.png", rows,
                                                     title="Top activated images of the best unit per digit").name
    reference = next((r for r in report["runs"] if r["id"] == report["reference_run"]), None)
    for name, layer in (reference or {}).get("layers", {}).items():
        rows = [(f"u{u['unit']} {u['best_digit']} AP {u['best_ap']:.2f}", _pictures(out_dir, u["exemplars"][:per_unit]))
                for u in layer["units"]]
        made[f"top_images_{name}"] = plots.picture_rows(
            pdir / f"top_images_{name}.png", rows, label_width=130,
            title=f"{name}: top activated images per unit (label: best digit and its AP)").name
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
        if p.is_file() and not p.relative_to(out_dir).parts[0] == "data" and p.suffix != ".pt"
    ) + ["report.json"]


__all__ = ["summarise", "write_report", "make_plots", "source_text"]
