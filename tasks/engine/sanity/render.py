"""Report text: one list of blocks (heading, paragraph, table, image) rendered as Markdown or HTML."""

from __future__ import annotations

import html
from collections.abc import Iterator

from .summary import SEED_ACCURACY, SEED_BEST_UNIT

Block = tuple  # ("h", level, text) | ("p", text) | ("ul", [text]) | ("table", header, rows) | ("img", path, alt)


def _pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}%"


def _f(v, digits: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{digits}f}"


def _ms(s: dict, pct: bool = False, digits: int = 3) -> str:
    if s is None or s.get("mean") is None:
        return "n/a"
    if s.get("n", 2) < 2:  # one seed: no spread to show
        return f"{100 * s['mean']:.1f}%" if pct else f"{s['mean']:.{digits}f}"
    if pct:
        return f"{100 * s['mean']:.1f}% ± {100 * s['std']:.1f}"
    return f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"


def _recipe_text(setting: dict) -> str:
    r = setting.get("recipe") or {}
    if not r:
        return (f"{setting['epochs']} epoch(s), Adam (lr {setting.get('lr')}, batch {setting.get('batch_size')}), "
                "cosine decay")
    warm = f", {r['warmup_epochs']:g} epoch(s) linear warm-up" if r.get("warmup_epochs") else ""
    init = {"torch": "PyTorch's default initialisation",
            "kaiming": "He-normal (Kaiming) conv initialisation, zero biases"}
    return (f"{r['epochs']} epoch(s), Adam lr {r['lr']:g}, batch {r['batch_size']}{warm}, cosine decay to 0; "
            f"{init.get(str(r.get('init')), r.get('init'))}")


def blocks(report: dict) -> Iterator[Block]:
    cfg = report["config"]
    cut = report["ap_cutoff"]
    networks = report["networks"]
    sections = list(networks.values())
    ks = list(SEED_BEST_UNIT["precision_at_k"])
    rs = list(SEED_BEST_UNIT["precision_at_recall"])
    yield ("h", 1, report["title"])
    yield ("p", f"Digit source: {report['source_text']} (`--source {report['source']}`)."
                + (" Quick configuration: small data, one seed; figures are indicative "
                   "only." if cfg.get("quick") else ""))
    yield ("h", 2, "Setting")
    rows = [
        ["classes (unordered pairs of different digits)"] + [str(n["setting"]["classes"]) for n in sections] + ["45"],
        ["training images"] + [f"{n['setting']['n_train']:,}" for n in sections] + ["20,000"],
        ["validation images"] + [f"{n['setting']['n_val']:,} ({n['setting']['val_note']})" for n in sections] + ["-"],
        ["conv units "
         "(conv1/conv2/conv3)"] + ["/".join(str(v) for v in n["setting"]["layers"].values()) for n in sections]
        + ["10/20/10"],
        ["network as built"] + [n["setting"]["network"] for n in sections] + ["conv 10/20/10, GAP, softmax"],
        ["training"] + [_recipe_text(n["setting"]) + f"; canvas {n['setting']['canvas']} px, digits "
                        f"{n['setting']['digit_size']} px" for n in sections] + ["-"],
        ["measured on"] + [f"AP/precision: all {n['setting']['n_val']:,} validation images; IoU: "
                           f"{n['setting'].get('iou_images')}; ablation: {n['setting'].get('ablation_images')}"
                           for n in sections] + ["-"],
        ["baseline validation accuracy"] + [_ms(n["variants"].get("baseline", {}).get("accuracy"), pct=True)
                                            for n in sections] + [_pct(SEED_ACCURACY)],
    ]
    yield ("table", [""] + [n["title"] for n in sections] + ["seed paper"], rows)
    yield ("p", f"Unit scores: a unit ranks images by the spatial maximum of its activation map. A unit is a "
                f"*detector* of digit d when its average precision (AP, the alignment score) for d is at least {cut} "
                f"(a random ranking gives AP ≈ the digit's frequency, about 0.2). Ablation effect = validation "
                f"accuracy lost when the unit's activation is zeroed. Spreads (±) are the standard deviation over "
                f"seeds.")

    yield ("h", 2, "Best unit per digit, beside the seed's digit-0 unit")
    for n in sections:
        best = n["best_units_over_seeds"]
        yield ("h", 3, n["title"])
        yield ("p", f"For each digit, the unit (any conv layer) with the largest AP for it, in each of the "
                    f"{len(n['baseline_runs'])} baseline network(s) ({', '.join(n['baseline_runs'])}); figures are the "
                    f"mean ± std over those seeds. The first row is the seed's published conv3 unit for digit 0. "
                    f"Precision@K cannot exceed (images showing the digit) / K.")
        header = (["unit (per seed)", "digit"] + [f"P@{k}" for k in ks] + [f"P@R={r}" for r in rs]
                  + ["AP", "IoU", "images showing the digit"])
        rows = [["seed paper: conv3", "0"] + [_f(SEED_BEST_UNIT["precision_at_k"][k]) for k in ks]
                + [_f(SEED_BEST_UNIT["precision_at_recall"][r]) for r in rs] + ["", "", ""]]
        for r in best:
            rows.append([", ".join(r["units"]), str(r["digit"])]
                        + [_ms(r["precision_at_k"].get(k), digits=2) for k in ks]
                        + [_ms(r["precision_at_recall"].get(x), digits=2) for x in rs]
                        + [_ms(r["ap"]), _ms(r["iou"]), _ms(r["positives"], digits=0)])
        yield ("table", header, rows)
        zero = next((r for r in best if r["digit"] == 0), None)
        if zero and zero["positives"]["mean"] is not None:
            yield ("p", _precision_note(zero["positives"]["mean"], n["setting"]["n_val"]))
        for key, alt in (("top_images_best", "Top activated images of the best unit per digit (first baseline seed)"),
                         ("precision_at_k", "Precision@K of the best units"),
                         ("precision_at_recall", "Precision at recall of the best units")):
            if f"{n['design']}_{key}" in report.get("plots", {}):
                yield ("img", report["plots"][f"{n['design']}_{key}"], f"{n['design']}: {alt}")

    yield from _false_positive_blocks(sections)

    yield ("h", 2, "Variants")
    yield ("p", f"Each variant trained with {cfg['seeds']} seed(s) (the seed sets the training data draw, the "
                f"initial weights and the batch order; variants and networks of one seed share the same data). Dropout "
                f"p = {cfg['dropout']} on conv3's pooled units; wide = conv3 with {cfg['wide']:g} x 10 units. "
                f"Detector cut-off: AP >= {cut}.")
    header = ["network", "variant", "conv3 units", "accuracy", "digits with a detector (any layer)",
              "digits with a conv3 detector", "conv3 detector units", "mean best conv3 AP", "largest conv3 ablation",
              "largest ablation (any layer)"]
    rows = []
    for n in sections:
        for v in n["variants"].values():
            rows.append([n["design"], v["title"], str(v["conv3_units"]), _ms(v["accuracy"], pct=True),
                         _ms(v["digits_with_detector"], digits=1), _ms(v["digits_with_detector_focus"], digits=1),
                         _ms(v["detector_units_focus"], digits=1), _ms(v["mean_best_ap_focus"]),
                         _ms(v["max_ablation_focus"], pct=True), _ms(v["max_ablation_any"], pct=True)])
    yield ("table", header, rows)
    for key in ("variants_accuracy", "variants_digits_with_detector", "variants_detector_units_focus",
                "variants_mean_best_ap_focus", "variants_max_ablation_focus"):
        if key in report.get("plots", {}):
            yield ("img", report["plots"][key], key.replace("_", " "))

    yield ("h", 2, "The seed's claims, one by one")
    yield ("p", "Each claim is judged on each network: REPRODUCED, NOT REPRODUCED, or INCONCLUSIVE (one seed, or a "
                "difference that the spread over seeds does not separate from noise).")
    yield ("table", ["claim", "network", "ours", "verdict", "how judged"],
           [[c["claim"], c["network"], c["ours"], c["verdict"].upper(), c["note"]] for c in report["claims"]])

    for n in sections:
        useful = n.get("usefulness")
        if not useful:
            continue
        yield ("h", 2, f"Usefulness: redundant digits ({n['title']})")
        red = "+".join(map(str, useful["redundant"]))
        sizes = ""
        if useful.get("n_train") and useful.get("n_val"):
            fewer = (useful["n_train"] != n["setting"]["n_train"] or useful["n_val"] != n["setting"]["n_val"])
            sizes = (f" Trained on {useful['n_train']:,} images, measured on {useful['n_val']:,} validation images"
                     + (f" (the variants: {n['setting']['n_train']:,} / {n['setting']['n_val']:,}; set apart by "
                        "useful_n_train / useful_n_val to fit the time budget: its figures are best AP and accuracy, "
                        "which need no precision@700)" if fewer else "") + ".")
        yield ("p", f"Digits {red} are shown at random in pictures of every class, so they carry no information "
                    f"about the class; {useful['classes']} classes over digits {min(useful['effective_digits'])}-"
                    f"{max(useful['effective_digits'])}. Accuracy {_ms(useful['accuracy'], pct=True)} over "
                    f"{useful['accuracy']['n']} seed(s).{sizes}")
        yield ("ul", useful["answer"])
        rows = [[d, "yes" if p["redundant"] else "", _ms(p["best_ap"]), _ms(p["detector_units"], digits=1),
                 _ms(p["baseline_best_ap"]), _ms(p["best_unit_ablation"], pct=True), _pct(p["frequency"]["mean"])]
                for d, p in useful["per_digit"].items()]
        yield ("table", ["digit", "redundant", "best conv3 AP", f"conv3 units with AP >= {cut}",
                         "best conv3 AP in the baseline", "ablation of that unit", "images showing it"], rows)
        if f"{n['design']}_usefulness" in report.get("plots", {}):
            yield ("img", report["plots"][f"{n['design']}_usefulness"], "Best AP per digit, redundant vs baseline")

    for n in sections:
        reference = next((r for r in report["runs"] if r["id"] == n["reference_run"]), None)
        if not reference:
            continue
        yield ("h", 2, f"Every unit of the reference network ({reference['id']}, {n['title']})")
        yield ("p", "Each unit's row is for its best digit (largest AP); report.json holds every unit x digit figure "
                    "for every run.")
        for name, layer in reference["layers"].items():
            yield ("h", 3, f"{name}: {layer['summary_line']}")
            rows = []
            for u in layer["units"]:
                d = str(u["best_digit"])
                k = reference["digits"].index(u["best_digit"])
                rows.append([str(u["unit"]), d, _f(u["best_ap"], 3)] + [_f(u["precision_at_k"][x][k]) for x in ks]
                            + [_f(u["precision_at_recall"][x][k]) for x in rs]
                            + [_f(u["iou"][k], 3), _pct(u["ablation"]), _pct(u["ablation_own_digit"]),
                               "yes" if u["detector"] else ""])
            yield ("table", ["unit", "digit", "AP"] + [f"P@{x}" for x in ks] + [f"P@R={x}" for x in rs]
                   + ["IoU", "ablation", "ablation (classes with digit)", "detector"], rows)
            if f"{n['design']}_top_images_{name}" in report.get("plots", {}):
                yield ("img", report["plots"][f"{n['design']}_top_images_{name}"], f"{name} top images")

    yield ("h", 2, "Runs")
    yield ("table", ["run", "network", "experiment", "variant", "seed", "val accuracy", "train accuracy (last epoch)",
                     "seconds"],
           [[r["id"], r.get("design", "mixturenet"), r["experiment"], r["variant"], str(r["seed"]),
             _pct(r["val_accuracy"]), _pct(r["train_accuracy"]), f"{sum(r['timings'].values()):.0f}"]
            for r in report["runs"]])
    t = report.get("timings", {})
    estimate = report.get("estimate_minutes")
    yield ("p", "Timings (s): " + ", ".join(f"{k} {v}" for k, v in t.items())
                + f"; device {report.get('device')}, {report.get('workers')} worker process(es)."
                + (f" Estimated before the run: about {estimate:.0f} minute(s) on an idle "
                   f"machine." if estimate else ""))


def _precision_note(zeros: float, n_val: int) -> str:
    """Why precision@K depends on how many images are ranked (what the precision probe measures)."""
    need = 0.99 * 700
    return (f"Precision@K depends on how many validation images are ranked: P@700 = 0.99 needs at least {need:.0f} "
            f"images showing a 0 among them. This run ranks {n_val:,} images, {zeros:,.0f} of which show a 0"
            + (" (enough)." if zeros >= need else " (too few: P@700 cannot reach the seed's figure here).")
            + " The precision probe (`python -m benchmarks.precision_probe`; its runs are in benchmarks/RESULTS.md) "
            "showed what ranking fewer images does to the seed's network: its best 0 unit (conv3, seed 0) scored "
            "P@100/300/500/700 = 1.00/0.97/0.94/0.89 on 4,000 "
            "images (782 with a 0) and 1.00/1.00/0.99/0.99 on 10,000 (2,018 with a 0), precision at recall "
            "0.25/0.5/0.75 = 0.99/0.96/0.91 and 0.99/0.97/0.92 (hardly moving with the number of images).")


def _false_positive_blocks(sections: list[dict]) -> Iterator[Block]:
    """What the best units' top images show when they miss their digit (measured, per network)."""
    if not any(n.get("false_positives") for n in sections):
        return
    yield ("h", 2, "Where precision@K is lost: the top images without the digit")
    yield ("p", "For the best unit of each digit, the top-K validation images that do not show the digit, and which "
                "digits those images do show (share of them, mean over the baseline seeds). A unit that answers to a "
                "shape shared with other digits loses its precision to those digits.")
    for n in sections:
        fps = n.get("false_positives") or {}
        if not fps:
            continue
        rows = []
        for d, by_k in fps.items():
            for K, fp in by_k.items():
                shows = sorted(((share, str(k)) for k, share in enumerate(fp["shows"]) if share > 0), reverse=True)[:4]
                rows.append([d, K, _ms(fp["n_false"], digits=1),
                             ", ".join(f"{digit} ({100 * share:.0f}%)" for share, digit in shows) or "-"])
        yield ("h", 3, n["title"])
        yield ("table", ["digit", "K", "top-K images without it", "digits they show (most often first)"], rows)


# -- renderers ------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict) -> str:
    out: list[str] = []
    for b in blocks(report):
        if b[0] == "h":
            out.append("#" * b[1] + " " + b[2])
        elif b[0] == "p":
            out.append(b[1])
        elif b[0] == "ul":
            out.append("\n".join(f"- {item}" for item in b[1]))
        elif b[0] == "table":
            out.append("| " + " | ".join(_md_cell(h) for h in b[1]) + " |")
            out.append("|" + "---|" * len(b[1]))
            out.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b[2])
        elif b[0] == "img":
            out.append(f"![{b[2]}]({b[1]})")
        out.append("")
    return "\n".join(out)


def to_html(report: dict) -> str:
    e = html.escape
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>{e(report['title'])}</title><style>body{{font:14px/1.4 system-ui,sans-serif;max-width:1200px;"
           "margin:1em auto;padding:0 1em}table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;"
           "padding:2px 6px;text-align:left}img{max-width:100%;display:block;margin:.5em 0}</style></head><body>"]
    for b in blocks(report):
        if b[0] == "h":
            out.append(f"<h{b[1]}>{e(b[2])}</h{b[1]}>")
        elif b[0] == "p":
            out.append(f"<p>{e(b[1])}</p>")
        elif b[0] == "ul":
            out.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in b[1]) + "</ul>")
        elif b[0] == "table":
            out.append("<table><tr>" + "".join(f"<th>{e(h)}</th>" for h in b[1]) + "</tr>")
            out.extend("<tr>" + "".join(f"<td>{e(str(c))}</td>" for c in row) + "</tr>" for row in b[2])
            out.append("</table>")
        elif b[0] == "img":
            out.append(f"<img src='{e(b[1])}' alt='{e(b[2])}'>")
    out.append("</body></html>")
    return "\n".join(out)
