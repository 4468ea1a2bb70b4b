"""`gan demo` end to end at a tiny size: report.json carries the specificity matrices and says plainly
whether the run shows the paper's claim; index.html shows them."""

from __future__ import annotations

import json
from html import escape

from tasks.engine.gan.demo import CLAIM_DIGITS, DemoSizes, run_demo

TINY = DemoSizes(train_images=120, val_images=40, gan_steps=4, gan_batch=16, gan_units=20, seg_epochs=1, seg_width=4,
                 dissect_samples=24, rank_samples=12, effect_samples=24, k=5, edits=2)


def test_a_tiny_demo_reports_both_specificity_matrices_and_a_verdict_on_the_claim(tmp_path) -> None:
    report = run_demo(tmp_path, quick=True, sizes=TINY)
    saved = json.loads((tmp_path / "report.json").read_text())
    for key in ("specificity", "specificity_random"):
        matrix = saved[key]
        assert len(matrix) == 10 and all(len(row) == 10 for row in matrix)
        assert all(v is None or isinstance(v, float) for row in matrix for v in row)
    # The matrix is the per-digit removal effect the report already had: its diagonal is remove_top.
    for d in range(10):
        assert saved["specificity"][d][d] == saved["top_vs_random"]["digits"][str(d)]["remove_top"]
    claim = saved["specificity_claim"]
    counted = sum(
        1 for d, row in enumerate(saved["specificity"])
        if row[d] is not None and row[d] >= 0.8 and all(v is None or v <= 0.2 for c, v in enumerate(row) if c != d))
    assert claim["specific_digits"] == counted and claim["shown"] == (counted >= CLAIM_DIGITS)
    assert "quick run" in claim["line"] and report["specificity"] == saved["specificity"]
    html = (tmp_path / "index.html").read_text()
    assert "Specificity: removing one digit's units" in html and escape(claim["line"].split(";")[0]) in html
    # Pictures for people: the dissection's exemplars are enlarged to at least 128 px.
    from PIL import Image

    # Where specificity comes from and how top units were chosen are said, in report.json and in index.html.
    assert saved["specificity_source"]["source"] == "by design" and saved["gan"]["ema"] == TINY.gan_ema
    assert "sprite" in saved["specificity_source"]["line"] and "layer2 channel u serves digit u // 2" in \
        saved["specificity_source"]["line"]
    assert "not read" in saved["top_units_chosen_by"] and escape(saved["specificity_source"]["line"]) in html
    # The top units are the dissection's: the k units of highest IoU with the digit in iqr.csv, read here again.
    import csv

    iou: dict[str, list[tuple[float, int]]] = {}
    with open(tmp_path / "dissection" / "layer2" / "iqr.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            iou.setdefault(row["concept"], []).append((-float(row["iou"]), int(row["unit"])))
    for d in range(10):
        expected = [unit for _, unit in sorted(iou[str(d)])[: TINY.k]]
        assert sorted(saved["top_vs_random"]["digits"][str(d)]["top_units"]) == sorted(expected)
    # The matrix from single-unit ablation's ranking is reported beside it, with its own units and verdict.
    ablation = saved["specificity_ablation_ranked"]
    assert len(ablation["specificity"]) == 10 and ablation["summary"]["specific_digits"] == sum(
        r["specific"] for r in ablation["summary"]["rows"])
    ranked = saved["causal_ranking"]
    for d in range(10):
        assert ablation["top_units"][str(d)] == [u["unit"] for u in ranked[str(d)][: TINY.k]]
    assert "ranked by single-unit ablation" in html
    # Insertion rates per digit, top units against random ones, the rule that defines them, and the figures of the
    # per-digit outcome they summarise.
    effects = saved["top_vs_random"]
    assert set(saved["insertion_rates"]) == {str(d) for d in range(10)} and "insertion_rule" in effects
    for d, rates in saved["insertion_rates"].items():
        outcome = effects["digits"][d]["insertion_top"]
        assert rates["top"] == (outcome["succeeded"] / outcome["samples"] if outcome["samples"] else None)
        assert rates["random"] == effects["digits"][d]["insertion_random"]["rate"]
        if outcome["failed_examples"] or outcome["succeeded_examples"]:
            assert (tmp_path / saved["pictures"][f"insert_{d}"]).is_file()
    assert "Insertion: switching a digit's units on" in html
    training = saved["training_seconds"]
    assert training["gan"] == saved["gan"]["seconds"] > 0 and training["threads"] == 1
    strip = next((tmp_path / "dissection" / "layer2" / "exemplars").glob("unit_*/rank_00.png"))
    assert min(Image.open(strip).size) >= 128
