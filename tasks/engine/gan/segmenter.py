"""Training and scoring the digit segmenter that labels generated images (GAN Dissection's s_c).

Trained on real mixture canvases, whose masks are exact (a digit's pixels are exactly its
non-zero pixels), and scored on held-out real canvases: pixel accuracy and per-digit IoU.
"""

from __future__ import annotations

from dataclasses import dataclass

import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import EngineError
from ..models import default_device
from .data import Canvases, load_canvases
from .models import DIGIT_NAMES, NUM_SEG_CLASSES, SEGMENTERS, save_checkpoint, segment


def confusion(pred: torch.Tensor, truth: torch.Tensor, classes: int = NUM_SEG_CLASSES) -> np.ndarray:
    """int64 [classes, classes]: rows truth, columns prediction, over every pixel."""
    idx = truth.long().flatten() * classes + pred.long().flatten()
    return torch.bincount(idx, minlength=classes * classes).view(classes, classes).numpy()


def scores_from_confusion(conf: np.ndarray) -> dict:
    """Pixel accuracy, per-digit IoU (class d + 1), their mean, and background IoU."""
    inter = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
    per_digit = {name: (None if np.isnan(iou[d + 1]) else float(iou[d + 1])) for d, name in enumerate(DIGIT_NAMES)}
    present = [v for v in per_digit.values() if v is not None]
    return {
        "pixel_accuracy": float(inter.sum() / max(1, conf.sum())),
        "digit_pixel_accuracy": float(inter[1:].sum() / max(1, conf[1:].sum())),  # recall on stroke pixels
        "per_digit_iou": per_digit,
        "mean_digit_iou": float(np.mean(present)) if present else None,
        "background_iou": None if np.isnan(iou[0]) else float(iou[0]),
    }


def evaluate_segmenter(segmenter: nn.Module, data: Canvases, *, batch_size: int = 256) -> dict:
    """Scores of ``segmenter`` on real canvases with exact masks."""
    segmenter.eval()
    conf = np.zeros((NUM_SEG_CLASSES, NUM_SEG_CLASSES), dtype=np.int64)
    for s in range(0, len(data), batch_size):
        pred = segment(segmenter, data.as_input(slice(s, s + batch_size)))
        conf += confusion(pred, data.labels[s : s + batch_size])
    return {**scores_from_confusion(conf), "n_images": len(data)}


@dataclass(frozen=True)
class SegmenterRecipe:
    """How the digit segmenter is trained: epochs of Adam over the real canvases and their masks."""

    epochs: int = 4
    batch_size: int = 32
    width: int = 16
    lr: float = 3e-3


def train_segmenter(
    data_dir: str | Path,
    out_file: str | Path,
    *,
    val_dir: str | Path | None = None,
    recipe: SegmenterRecipe = SegmenterRecipe(),
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train ``DigitSegmenter`` on a mixture dataset; returns (and stores) held-out scores.

    Background pixels outnumber stroke pixels ~10:1, so the loss weighs background 0.2: with
    equal weights a short run learns "everything is background" first and stays there longer.
    """
    epochs, batch_size, width, lr = recipe.epochs, recipe.batch_size, recipe.width, recipe.lr
    if epochs < 1:
        raise EngineError(f"epochs must be at least 1, got {epochs}")
    device = device or default_device()
    data = load_canvases(data_dir)
    val = load_canvases(val_dir) if val_dir is not None else None
    torch.manual_seed(seed)
    model = SEGMENTERS["digitseg"](width=width).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(data) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=lr, total_steps=steps)
    weights = torch.ones(NUM_SEG_CLASSES, device=device)
    weights[0] = 0.2
    shuffler = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(data), generator=shuffler)
        batches = range(0, len(data), batch_size)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = batches = tqdm(batches, desc=f"segmenter {epoch}/{epochs}", unit="batch", leave=False)
        loss_sum, seen = 0.0, 0
        for s in batches:
            pick = order[s : s + batch_size]
            x = data.as_input(pick).to(device)
            y = data.labels[pick].long().to(device)
            loss = F.cross_entropy(model(x), y, weight=weights)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            loss_sum += float(loss.detach()) * len(pick)
            seen += len(pick)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}")
        history.append({"epoch": epoch, "loss": loss_sum / seen})
    model.eval().cpu()
    metrics: dict = {"epochs": epochs, "seconds": time.perf_counter() - started, "n_train": len(data),
                     "history": history}
    if val is not None:
        metrics["val"] = evaluate_segmenter(model, val)
    save_checkpoint(model, out_file, kind="segmenter", arch="digitseg", extra={"metrics": metrics})
    return metrics


def segmenter_scores(checkpoint: str | Path) -> dict | None:
    """The held-out scores a trained segmenter's checkpoint carries (``train_segmenter`` with a
    ``val_dir``), or None when it carries none: a generator unit's IoU is only as good as these."""
    import torch

    try:
        payload = torch.load(Path(checkpoint), map_location="cpu", weights_only=True)
    except Exception:  # unreadable files are refused by load_segmenter, with its own message
        return None
    metrics = payload.get("metrics") if isinstance(payload, dict) else None
    val = metrics.get("val") if isinstance(metrics, dict) else None
    if not isinstance(val, dict) or "pixel_accuracy" not in val:
        return None
    keys = ("pixel_accuracy", "digit_pixel_accuracy", "mean_digit_iou", "per_digit_iou", "n_images")
    return {k: val[k] for k in keys if k in val}

