"""A finished sanity report on disk (hand-made runs, a real tiny validation set and checkpoint)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.engine.mixture import MixtureSpec, make_mixture
from tasks.engine.models import MixtureNet
from tasks.engine.sanity.report import summarise, write_report
from tests.sanity.runs import make_run, one_hot_aps
from tests.sanity.test_summary import CONFIG
from units.sanity.models import SanityReport

PICTURES = [f"runs/baseline_s0/dissect/conv3/unit_0001/r{r:02d}.png" for r in range(3)]


def write_finished_report(report: SanityReport, root) -> SanityReport:
    """Files and JSON of a succeeded two-variant report in `root`; returns the updated row."""
    make_mixture(root / "data" / "val", n_images=12, split="val", seed=3, spec=MixtureSpec(canvas=32, digit_size=14))
    for k, rel in enumerate(PICTURES):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((32, 32, 3), 40 * k, np.uint8)).save(path)
    runs = []
    for variant, strong in (("baseline", 0.9), ("wide", 0.95)):
        width = 3.0 if variant == "wide" else 1.0
        units = 30 if variant == "wide" else 10
        aps = one_hot_aps(list(range(10)), strong)[: units] + [[0.2] * 10] * max(0, units - 10)
        aps[1] = [0.5] * 10  # unit 1 detects nothing: not gold
        run = make_run(variant, 0, accuracy=0.9, conv3_aps=aps, pictures=PICTURES)
        ckpt = root / run["checkpoint"]
        ckpt.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"state_dict": MixtureNet(num_classes=45, width=width).state_dict()}, ckpt)
        runs.append(run)
    config = dict(CONFIG, variants=["baseline", "wide"], seeds=1, usefulness=False)
    data = summarise(config=config, runs=runs, data={"val": "data/val"})
    write_report(data, root)
    data = json.loads(json.dumps(data))  # what the JSONField stores
    report.json, report.files, report.status = data, data["files"], SanityReport.Status.SUCCEEDED
    report.save(update_fields=["json", "files", "status"])
    return report


@pytest.fixture
def finished_report(db, media_root, requester):
    report = SanityReport.objects.create(params={"seeds": 1}, source="digits", created_by=requester)
    report.out_dir = f"sanity/{report.pk}"
    report.save(update_fields=["out_dir"])
    return write_finished_report(report, media_root / "sanity" / str(report.pk))
