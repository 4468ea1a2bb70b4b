"""dissect on a mixture dataset writes every unit's image-ranking figures per digit."""

from __future__ import annotations

import csv
import math

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from tasks.engine.capture import LayerCapture
from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, dissect
from tasks.engine.mixture import MixtureSpec, make_mixture
from tasks.engine.models import MixtureNet


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_a_mixture_dissection_writes_ap_and_precisions_that_match_a_naive_ranking(tmp_path):
    root = make_mixture(tmp_path / "mx", n_images=60, seed=3, spec=MixtureSpec(canvas=40))
    dataset = open_dataset(f"broden:{root}")
    torch.manual_seed(0)
    model = MixtureNet().eval()
    dissect(model, dataset, DissectOptions(layers=["conv3"], top_k=3, device="cpu", render=False), tmp_path / "out")
    rows = _read(tmp_path / "out" / "conv3" / "alignment.csv")
    assert len(rows) == 10 * 10  # 10 units x digits 0..9

    # Independent: the spatial max per image, digit presence from the sources file the generator wrote.
    with LayerCapture(model, ["conv3"]) as cap:
        images = torch.stack([dataset[i].image for i in range(len(dataset))])
        scores = cap.run(images)["conv3"].amax(dim=(2, 3)).numpy()
    sources = _read(root / "sources.csv")  # the digits the generator pasted into each image
    names = [c.name for c in dataset.concepts]
    presence = np.array([[name in row["digits"].split(";") for name in names] for row in sources])
    for row in rows:
        u, c = int(row["unit"]) - 1, names.index(row["concept"])
        truth = presence[:, c]
        order = sorted(range(len(scores)), key=lambda n: (-scores[n, u], n))
        hits = [bool(truth[n]) for n in order]
        assert float(row["precision@100"]) == sum(hits) / len(hits)  # K capped at the 60 images
        assert not math.isnan(float(row["ap"]))
        np.testing.assert_allclose(float(row["ap"]), average_precision_score(truth, scores[:, u]), rtol=1e-6)
        needed, seen = 0.5 * sum(hits), 0
        for rank, h in enumerate(hits, start=1):
            seen += h
            if seen >= needed:
                np.testing.assert_allclose(float(row["precision@recall0.5"]), seen / rank, rtol=1e-9)
                break


def test_a_broden_set_without_classes_gets_no_alignment_file(tmp_path):
    from tests.engine.factories import write_broden

    fake = write_broden(tmp_path / "b", n_images=4)
    dataset = open_dataset(f"broden:{fake.root}")
    model = MixtureNet().eval()
    dissect(model, dataset, DissectOptions(layers=["conv3"], top_k=2, device="cpu", render=False), tmp_path / "out")
    assert (tmp_path / "out" / "conv3" / "tally.csv").is_file()
    assert not (tmp_path / "out" / "conv3" / "alignment.csv").exists()
