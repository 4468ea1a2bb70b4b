"""Generator dissection against a slow per-image reference on a tiny random generator."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from tasks.engine.gan.dissect import GanDissectOptions, dissect_generator
from tasks.engine.gan.iqr import CANDIDATE_TOP_FRACTIONS
from tasks.engine.tally import read_tally

from .gan_helpers import band_segmenter_for, forward_by_hand, labels_of, reference_z, tiny_generator, upsampled_mask

N, SEED, QUANTILE, LAYER = 24, 3, 0.05, "layer2"


@pytest.fixture(scope="module")
def dissected(tmp_path_factory):
    gen = tiny_generator()
    seg = band_segmenter_for(gen)
    out = tmp_path_factory.mktemp("gan-dissect")
    options = GanDissectOptions(layers=[LAYER], n_samples=N, seed=SEED, quantile=QUANTILE, top_k=3, batch_size=7,
                                progress_bar=False)
    result = dissect_generator(gen, seg, options, out)
    # The reference: one image at a time, stage by stage, no hooks, no batching.
    maps, labels = [], []
    for i in range(N):
        image, stage = forward_by_hand(gen, reference_z(i, gen.z_dim, SEED))
        maps.append(stage[LAYER][0])
        labels.append(labels_of(seg, image))
    return result, out, torch.stack(maps), torch.stack(labels)


def test_thresholds_are_the_top_quantile_of_each_units_values(dissected) -> None:
    result, out, maps, _ = dissected
    expected = torch.quantile(maps.transpose(0, 1).reshape(maps.shape[1], -1), 1 - QUANTILE, dim=1).numpy()
    np.testing.assert_allclose(result.layers[LAYER].thresholds, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(np.load(out / LAYER / "thresholds.npy"), expected, rtol=1e-6, atol=1e-7)


def test_iou_of_every_unit_and_digit_matches_the_per_image_count(dissected) -> None:
    result, out, maps, labels = dissected
    T = result.layers[LAYER].thresholds
    U = maps.shape[1]
    inter = np.zeros((U, 10))
    area = np.zeros(U)
    truth = np.array([(labels == d + 1).sum().item() for d in range(10)], dtype=float)
    for n in range(N):
        has_digit = bool((labels[n] > 0).any())  # original rule: the image has a label of the category
        for u in range(U):
            mask = upsampled_mask(maps[n, u], float(T[u]))
            if has_digit:
                area[u] += mask.sum().item()
            for d in range(10):
                inter[u, d] += (mask & (labels[n] == d + 1)).sum().item()
    expected = inter / (area[:, None] + truth[None, :] - inter + 1e-10)
    assert truth.min() > 0, "every digit must get pixels for the comparison to bite"
    np.testing.assert_allclose(result.layers[LAYER].iou, expected, rtol=1e-9, atol=1e-12)
    rows = {row["unit"]: row for row in read_tally(out / LAYER / "tally.csv")}
    for u in range(U):
        assert rows[u + 1]["score"] == pytest.approx(expected[u].max(), rel=1e-9)
        assert rows[u + 1]["label"] == str(int(expected[u].argmax()))


def test_top_images_are_the_samples_with_the_largest_spatial_maximum(dissected) -> None:
    result, out, maps, _ = dissected
    peak = maps.flatten(2).amax(2)  # [N, U]
    for u in range(maps.shape[1]):
        order = sorted(range(N), key=lambda i: (-float(peak[i, u]), i))[:3]
        assert list(result.layers[LAYER].topk_indices[u]) == order
    with open(out / LAYER / "topk.csv", newline="") as fh:
        first = next(csv.DictReader(fh))
    assert first["image_name"] == f"seed{SEED}/sample_{int(first['image']):06d}"


def test_iqr_threshold_is_the_candidate_with_the_best_information_quality_ratio(dissected) -> None:
    _, out, maps, labels = dissected
    with open(out / LAYER / "iqr.csv", newline="") as fh:
        rows = {(int(r["unit"]), r["concept"]): r for r in csv.DictReader(fh)}
    for u in (0, 3, 7):
        values = maps[:, u].flatten()
        ups = [torch.nn.functional.interpolate(maps[n, u][None, None], size=(32, 32), mode="bilinear",
                                               align_corners=False)[0, 0] for n in range(N)]
        for d in (0, 5, 9):
            best = (-1.0, None)
            for f in sorted(CANDIDATE_TOP_FRACTIONS, reverse=True):  # lowest threshold first, as the engine breaks ties
                t = float(torch.quantile(values, 1 - f))
                cells = np.zeros(4)
                for n in range(N):
                    m, s = ups[n] > t, labels[n] == d + 1
                    cells += [(m & s).sum().item(), (m & ~s).sum().item(), (~m & s).sum().item(),
                              (~m & ~s).sum().item()]
                p = cells / cells.sum()
                pm, ps = [p[0] + p[1], p[0] + p[1], p[2] + p[3], p[2] + p[3]], [p[0] + p[2], p[1] + p[3], p[0] + p[2],
                                                                                p[1] + p[3]]
                mi = sum(p[k] * math.log(p[k] / (pm[k] * ps[k])) for k in range(4) if p[k] > 0)
                h = -sum(p[k] * math.log(p[k]) for k in range(4) if p[k] > 0)
                iqr = mi / h if h > 0 else 0.0
                if iqr > best[0] + 1e-12:
                    best = (iqr, (f, t, cells[0] / (cells[0] + cells[1] + cells[2])))
            row = rows[(u + 1, str(d))]
            assert float(row["iqr"]) == pytest.approx(best[0], rel=1e-6, abs=1e-12)
            assert float(row["top_fraction"]) == best[1][0]
            assert float(row["iou"]) == pytest.approx(best[1][2], rel=1e-6, abs=1e-12)


def test_outputs_are_the_classifier_dissection_files_plus_the_generator_ones(dissected) -> None:
    result, out, maps, _ = dissected
    layer_dir = out / LAYER
    for name in ("tally.csv", "topk.csv", "thresholds.npy", "summary.json", "iqr.csv", "iqr_thresholds.npy",
                 "concept_means.npy"):
        assert (layer_dir / name).is_file(), name
    summary = json.loads((layer_dir / "summary.json").read_text())
    assert summary["kind"] == "generator" and summary["images"] == N and summary["iou_rule"] == "original"
    strip = out / result.layers[LAYER].strips[0]
    assert strip.is_file()
    z = np.load(out / "z.npy")
    np.testing.assert_array_equal(z[5], reference_z(5, z.shape[1], SEED)[0].numpy())
    assert np.load(layer_dir / "concept_means.npy").shape == (maps.shape[1], 10)
