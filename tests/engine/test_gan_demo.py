"""`gan demo` end to end at a tiny size: report.json carries the specificity matrices and says plainly
whether the run shows the paper's claim; index.html shows them."""

from __future__ import annotations

import json
from html import escape

from tasks.engine.gan.demo import CLAIM_DIGITS, DemoSizes, run_demo

TINY = DemoSizes(train_images=120, val_images=40, gan_steps=4, gan_batch=16, seg_epochs=1, seg_width=4,
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

    strip = next((tmp_path / "dissection" / "layer2" / "exemplars").glob("unit_*/rank_00.png"))
    assert min(Image.open(strip).size) >= 128
