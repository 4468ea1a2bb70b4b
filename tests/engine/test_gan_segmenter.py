"""The digit segmenter: scores from the confusion matrix, and a short fixed-seed training run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.engine.gan.data import load_canvases, make_canvases
from tasks.engine.gan.models import load_segmenter
from tasks.engine.gan.segmenter import (
    SegmenterRecipe, confusion, evaluate_segmenter, scores_from_confusion, train_segmenter,
)


def test_scores_count_pixels_and_digit_iou_by_hand() -> None:
    truth = torch.tensor([[0, 0, 1, 1], [0, 3, 3, 0]])
    pred = torch.tensor([[0, 1, 1, 0], [0, 3, 2, 0]])
    scores = scores_from_confusion(confusion(pred, truth))
    assert scores["pixel_accuracy"] == pytest.approx(5 / 8)
    assert scores["digit_pixel_accuracy"] == pytest.approx(2 / 4)  # stroke pixels labelled right
    assert scores["per_digit_iou"]["0"] == pytest.approx(1 / 3)  # label 1 = digit 0: 1 shared, 3 in the union
    assert scores["per_digit_iou"]["2"] == pytest.approx(1 / 2)
    assert scores["per_digit_iou"]["1"] == 0.0  # predicted once, never true
    assert scores["per_digit_iou"]["5"] is None  # neither true nor predicted: undefined, not 0
    assert scores["mean_digit_iou"] == pytest.approx((1 / 3 + 0 + 1 / 2) / 3)


def test_a_short_fixed_seed_run_beats_labelling_everything_background(tmp_path) -> None:
    train = make_canvases(tmp_path / "train", n_images=400, canvas=32, seed=0)
    val = make_canvases(tmp_path / "val", n_images=100, canvas=32, split="val", seed=1)
    metrics = train_segmenter(train, tmp_path / "seg.pt", val_dir=val,
                              recipe=SegmenterRecipe(epochs=5, width=8, lr=1e-2, batch_size=16), seed=0, device="cpu",
                              progress=False)
    scores = metrics["val"]
    background = float((load_canvases(val).labels == 0).float().mean())
    # Measured on this seed: pixel accuracy 0.893 (background alone: ~0.83), stroke pixels 0.37, digit IoU 0.21.
    assert scores["pixel_accuracy"] > background + 0.04
    assert scores["digit_pixel_accuracy"] > 0.25
    assert scores["mean_digit_iou"] > 0.12
    # A user's segmenter checkpoint goes through the same loader and scoring.
    again = evaluate_segmenter(load_segmenter(checkpoint=tmp_path / "seg.pt"), load_canvases(val))
    assert again["pixel_accuracy"] == scores["pixel_accuracy"]
    assert np.allclose(list(again["per_digit_iou"].values()), list(scores["per_digit_iou"].values()))
