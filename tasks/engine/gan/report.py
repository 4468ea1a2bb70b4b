"""index.html of the GAN demo: the figures of report.json as tables, with its pictures."""

from __future__ import annotations

from html import escape
from pathlib import Path

from .models import DIGIT_NAMES
from .pictures import legend_html


def _num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _matrix(matrix: list[list[float | None]]) -> str:
    return _table(["units of \\ pixels of", *DIGIT_NAMES],
                  [[f"<b>{d}</b>", *(_num(v, 2) for v in row)] for d, row in zip(DIGIT_NAMES, matrix)])


def _specificity_html(report: dict) -> list[str]:
    if "specificity" not in report:
        return []
    claim = report.get("specificity_claim", {})
    return [
        "<h2>Specificity: removing one digit's units</h2>",
        f"<p>{escape(str(claim.get('line', '')))}</p>",
        "<p>Row: the digit whose top units are removed; column: the share of each digit's pixels removed "
        "(- where a digit was not generated).</p>",
        _matrix(report["specificity"]),
        "<p>The same with random units (one random set per row):</p>",
        _matrix(report["specificity_random"]),
        *_ablation_ranked_html(report.get("specificity_ablation_ranked")),
        *_source_html(report),
    ]


def _ablation_ranked_html(block: dict | None) -> list[str]:
    if not block:
        return []
    summary = block["summary"]
    return [f"<p>With each digit's top units ranked by single-unit ablation instead ({escape(block['what'])}): "
            f"{summary['specific_digits']} of 10 digits specific.</p>", _matrix(block["specificity"])]


def _source_html(report: dict) -> list[str]:
    parts = []
    if "specificity_source" in report:
        parts.append(f"<p><b>Where the specificity comes from</b>: {escape(report['specificity_source']['line'])}</p>")
    if "top_units_chosen_by" in report:
        parts.append(f"<p><b>How top units were chosen</b>: {escape(report['top_units_chosen_by'])}.</p>")
    gates = report.get("gan", {}).get("gates")
    if gates:
        parts.append(f"<p>Gates after training ({escape(gates['gating'])}): channels per digit "
                     f"{escape(' '.join(str(v) for v in gates['units_per_digit']))}; {gates['shared_units']} of "
                     f"{gates['units']} channels serve more than one digit, {gates['unused_units']} none.</p>")
    return parts


def _insertion_html(report: dict) -> list[str]:
    eff = report["top_vs_random"]
    if "insertion_rule" not in eff:
        return []
    rows = []
    for d, r in eff["digits"].items():
        top, rand = r["insertion_top"], r["insertion_random"]
        rows.append([d, str(top["samples"]), _num(top["rate"], 2), _num(rand["rate"], 2),
                     _num(top["other_digit_pixels_in_region_failed"], 1),
                     _num(top["other_digit_pixels_in_region_succeeded"], 1)])
    parts = [
        "<h2>Insertion: switching a digit's units on in the centre</h2>",
        f"<p>{escape(eff['insertion_rule'])}. Mean rate over digits: top units "
        f"{_num(eff.get('mean_insertion_rate_top'), 2)}, random units {_num(eff.get('mean_insertion_rate_random'), 2)}."
        "</p>",
        _table(["digit", "samples without it", "rate, top units", "rate, random units",
                "other digits' pixels in the region: failed", "succeeded"], rows),
        "<p>Where insertion fails (GAN Dissection's context finding): each picture shows samples whose insertion "
        "failed first, then ones where it succeeded; top row before, bottom row after, the region outlined, "
        "digits coloured by the segmenter.</p>",
    ]
    pics = report["pictures"]
    for d, r in eff["digits"].items():
        if f"insert_{d}" in pics:
            top = r["insertion_top"]
            parts.append(f"<p>digit {d}: {len(top['failed_examples'])} failed, then "
                         f"{len(top['succeeded_examples'])} succeeded<br><img src='{pics[f'insert_{d}']}'></p>")
    return parts


def write_html(path: Path, report: dict) -> None:
    seg = report["segmenter"]
    eff = report["top_vs_random"]
    dis = report["dissection"]
    pics = report["pictures"]
    parts = [
        "<!doctype html><meta charset='utf-8'><title>GAN Dissection demo</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse;margin:1em "
        "0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}img{image-rendering:pixelated;max-width:100%}"
        "</style>",
        f"<h1>GAN Dissection on mixture-of-digits{' (quick)' if report['quick'] else ''}</h1>",
        f"<p>Layer <b>{escape(report['layer'])}</b>; {report['seconds_total']:.0f} s in all "
        f"({escape(', '.join(f'{k} {v:.0f} s' for k, v in report['seconds'].items()))}).</p>",
        f"<p>GAN: {report['gan'].get('steps')} steps on {report['gan'].get('n_train')} canvases, trained in "
        f"{report['gan'].get('seconds', 0):.0f} s on {escape(str(report.get('training_seconds', {}).get('cpu', '?')))}"
        f" with one thread; segmenter trained in "
        f"{report.get('segmenter_training', {}).get('seconds', 0):.0f} s.</p>",
        "<h2>Generated images</h2>",
        f"<p><img src='{pics['generated']}'></p><p>Segmented ({legend_html()}):</p><p><img "
        f"src='{pics['segmented']}'></p>",
        "<h2>Segmenter on held-out real canvases</h2>",
        f"<p>pixel accuracy {_num(seg['pixel_accuracy'])}, on digit pixels {_num(seg['digit_pixel_accuracy'])}, "
        f"mean digit IoU {_num(seg['mean_digit_iou'])} ({seg['n_images']} canvases)</p>",
        _table(["digit", *DIGIT_NAMES], [["IoU", *(_num(seg["per_digit_iou"][d]) for d in DIGIT_NAMES)]]),
        "<h2>Dissection</h2>",
        f"<p>{escape(str(dis['line']))} (per-unit top-quantile threshold; tally.csv)</p>",
        _table(["unit", "label", "IoU", "top images"],
               [[str(u["unit"]), escape(u["label"]), _num(u["iou"]), f"<img src='{escape(u['strip'])}' height=40>"]
                for u in dis["top_units"]]),
        "<p>The paper's per-concept threshold (IQR), best unit per digit:</p>",
        _table(["digit", "unit", "IoU", "IQR", "top fraction"],
               [[d, str(v["unit"]), _num(v["iou"]), _num(v["iqr"], 4), str(v["top_fraction"])]
                for d, v in dis["best_unit_per_digit_iqr"].items()]),
        f"<h2>Causal effect: top-{eff['k']} units vs {eff['k']} random units (of {eff['units_in_layer']})</h2>",
        f"<p>Averaged over {eff['n_images']} generated images. Remove: fraction of the digit's pixels removed. "
        "Insert (central region, units set to their mean activation where the digit is present): fraction of the "
        "region's other pixels turned into the digit.</p>",
        _table(["digit", "pixels before", "remove top", "remove random", "insert top", "insert random",
                "top units (1-based)"],
               [[d, str(r["pixels_before"]), _num(r["remove_top"]), _num(r["remove_random"]), _num(r.get("insert_top")),
                 _num(r.get("insert_random")), escape(" ".join(str(u) for u in r["top_units"][:8])) + " ..."]
                for d, r in eff["digits"].items()]),
        f"<p>Mean over digits: remove top {_num(eff['mean_remove_top'])} vs random {_num(eff['mean_remove_random'])}; "
        f"insert top {_num(eff.get('mean_insert_top'))} vs random {_num(eff.get('mean_insert_random'))}.</p>",
        *_specificity_html(report),
        *_insertion_html(report),
        "<h2>Ablating each digit's top units (top row before, bottom row after)</h2>",
    ]
    for d in DIGIT_NAMES:
        if f"ablate_{d}" in pics:
            parts.append(f"<p>digit {d}:<br><img src='{pics[f'ablate_{d}']}'></p>")
    edit = report["edit"]
    parts.append(f"<h2>Edit function</h2><p>{escape(edit['what'])}: median {edit['median_seconds'] * 1000:.1f} ms, "
                 f"max {edit['max_seconds'] * 1000:.1f} ms over {edit['n']} edits.</p>")
    parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in report["notes"]) + "</ul>")
    path.write_text("\n".join(parts), encoding="utf-8")
