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


def test_pictures_are_enlarged_to_128_px_and_grey_samples_show_dark_strokes_on_white(dissected) -> None:
    """A person judges a unit on pictures at least 128 px; the plain picture of sample i is that
    sample's generated image, grey levels inverted, each pixel a 4x4 block."""
    from PIL import Image

    result, out, maps, _ = dissected
    gen = tiny_generator()
    layer = result.layers[LAYER]
    checked = 0
    for unit, files in layer.plain.items():
        for rank, rel in enumerate(files):
            index = int(np.asarray(layer.topk_indices)[unit][rank])
            image, _ = forward_by_hand(gen, reference_z(index, gen.z_dim, SEED))
            grey = ((image[0, 0].detach().clamp(-1, 1) + 1) * 127.5).round().numpy().astype(np.uint8)
            expected = np.kron(255 - grey, np.ones((4, 4), dtype=np.uint8))
            shown = np.asarray(Image.open(out / rel).convert("RGB"))
            assert shown.shape == (128, 128, 3)
            assert np.abs(shown[..., 0].astype(int) - expected.astype(int)).max() <= 1  # rounding of the forward
            highlighted = np.asarray(Image.open(out / layer.exemplars[unit][rank]).convert("RGB"))
            assert highlighted.shape == (128, 128, 3)
            checked += 1
    assert checked >= 3
    meta = json.loads((out / "generated.json").read_text())
    assert meta["image_size"] == [32, 32] and meta["picture_size"] == [128, 128]


def test_on_a_black_canvas_the_highlight_is_visible_after_inversion() -> None:
    """Outside the region a NetDissect overlay keeps 20% of the brightness: on black strokes-on-black
    nothing changes, on the inverted picture the paper around the region turns from white to grey."""
    from tasks.engine.gan.models import to_display_rgb
    from tasks.engine.render import overlay

    canvas = -torch.ones(1, 1, 32, 32)
    canvas[0, 0, 10:20, 14:16] = 1.0  # one light stroke on black, as the digits canvases are drawn
    shown = to_display_rgb(canvas).numpy()[0]
    assert shown.shape == (128, 128, 3)
    assert shown[0, 0].tolist() == [255, 255, 255] and shown[10 * 4, 14 * 4].tolist() == [0, 0, 0]
    mask = np.zeros((128, 128), dtype=bool)
    mask[32:96, 32:96] = True
    pic = overlay(shown, mask)
    inside, outside = pic[mask & (shown[..., 0] == 255)], pic[~mask & (shown[..., 0] == 255)]
    assert inside.min() == 255 and outside.max() == 51  # 255 * 0.2, truncated


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
