"""Trainer for MixtureNet (both designs) on a mixture-of-digits dataset (see mixture.py).

Made for CPUs: the whole dataset is decoded once into one uint8 tensor and batches are
sliced from it, so an epoch costs only the network's own work. Each design has its own
recipe (RECIPES): the seed's plain network (no BatchNorm) needs another initialisation
and learning rate than ours.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .datasets import NETDISSECT_MEAN, NETDISSECT_STD, BrodenDataset
from .errors import DatasetError, EngineError
from .models import DESIGNS, MixtureNet, default_device


@dataclass(frozen=True)
class Recipe:
    """How a design is trained: Adam, linear warm-up then cosine decay to 0, per step."""

    epochs: int
    lr: float
    batch_size: int = 64
    warmup_epochs: float = 0.0
    init: str = "torch"  # "torch": PyTorch's default; "kaiming": He-normal convs (fan_in, ReLU), zero biases
    # Zero classifier weights at the start. Without it the plain (no BatchNorm) network sits at chance:
    # random logits push every conv3 unit towards zero through GAP until the ReLUs die (probe: pooled
    # conv3 activations 0.014 after 120 steps, loss still ln 45).
    zero_classifier: bool = False
    weight_decay: float = 0.0  # Adam's L2 penalty (torch.optim.Adam weight_decay)


RECIPES: dict[str, Recipe] = {
    # 6 epochs at lr 1e-2 (the sanity check's full run uses 3 on 20,000 images).
    "mixturenet": Recipe(epochs=6, lr=1e-2),
    # He init + zero classifier weights (without them the plain network's ReLUs die), Adam 1e-2 after a
    # one-epoch linear warm-up (a shorter one leaves it near chance), batch 64, cosine to 0 over 4 epochs:
    # above 90% validation accuracy on 20,000 images. The runs that chose it: benchmarks/RESULTS.md.
    "seed": Recipe(epochs=4, lr=1e-2, batch_size=64, warmup_epochs=1.0, init="kaiming", zero_classifier=True),
}


def recipe_for(design: str, **overrides) -> Recipe:
    """The design's recipe with the given fields replaced (None values are ignored)."""
    if design not in RECIPES:
        raise EngineError(f"Unknown MixtureNet design {design!r}; choose one of {', '.join(DESIGNS)}.")
    return replace(RECIPES[design], **{k: v for k, v in overrides.items() if v is not None})


def _initialise(model: MixtureNet, init: str, zero_classifier: bool) -> None:
    if init not in ("torch", "kaiming"):
        raise EngineError(f"Unknown initialisation {init!r}; use 'torch' or 'kaiming'.")
    if init == "kaiming":
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    if zero_classifier:
        # Weights only: a 20k-image epoch with the bias zeroed too (batch 64) stayed exactly at ln(45),
        # while weights-only (batch 32) left the plateau within the first epoch; not separated further.
        nn.init.zeros_(model.fc.weight)


def load_mixture_tensors(data_dir: Path | str) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """All pictures as uint8 [N, 3, H, W], class indices [N] and the class names."""
    ds = BrodenDataset(data_dir)
    targets = ds.targets()
    if targets is None or ds.class_names is None:
        raise DatasetError(f"{data_dir} has no class column or no meta.json class_names; make it with `mixture make`.")
    first = np.asarray(ds.load_rgb(0))
    images = np.empty((len(ds), *first.shape), dtype=np.uint8)
    for i in range(len(ds)):
        images[i] = np.asarray(ds.load_rgb(i))  # a wrong size raises DatasetError naming the file
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(targets), list(ds.class_names)


def _normalise(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    m = torch.tensor(mean, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - m) / s


def _channels_last(device: str) -> bool:
    """NHWC tensors on the CPU: oneDNN's convolutions are ~1.4x faster on them for these small networks
    (seed design, one thread: 1.6 vs 2.3 ms per training image). Only the memory layout changes; the
    network computes the same function (equal up to float rounding)."""
    return not str(device).startswith("cuda")


def _layout(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, targets: torch.Tensor, *, mean: Sequence[float],
             std: Sequence[float], device: str, batch_size: int = 512) -> float:
    """Top-1 accuracy of `model` (put in eval mode) on uint8 images."""
    model.eval()
    correct = 0
    nhwc = _channels_last(device)
    for s in range(0, len(images), batch_size):
        x = _layout(_normalise(images[s : s + batch_size].to(device), mean, std), nhwc)
        correct += int((model(x).argmax(1).cpu() == targets[s : s + batch_size]).sum())
    return correct / max(1, len(images))


@dataclass(frozen=True)
class NetShape:
    """Which MixtureNet to build: its design and the two knobs the sanity check's variants turn."""

    design: str = "mixturenet"  # or "seed"
    width: float = 1.0  # conv3's units x width
    dropout: float = 0.0  # on conv3


def train_mixture(
    data_dir: Path | str,
    out_file: Path | str,
    *,
    val_dir: Path | str | None = None,
    net: NetShape = NetShape(),
    recipe: Recipe | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train the MixtureNet `net` describes, save a checkpoint `load_model("mixturenet", out_file)` reads,
    return metrics. `recipe` defaults to RECIPES[net.design] (`recipe_for` changes some of its fields).

    Adam, linear warm-up then cosine learning-rate decay; images are normalised like the
    probe datasets (NetDissect-Lite's mean/std) so dissection sees what training saw. On the
    CPU the same seed gives the same weights.
    """
    recipe = recipe or recipe_for(net.design)
    epochs, batch_size, lr = recipe.epochs, recipe.batch_size, recipe.lr
    device = device or default_device()
    mean, std = NETDISSECT_MEAN, NETDISSECT_STD
    images, targets, class_names = load_mixture_tensors(data_dir)
    val = None
    if val_dir is not None:
        val_images, val_targets, val_names = load_mixture_tensors(val_dir)
        if val_names != class_names:
            raise DatasetError(f"{val_dir} has other classes than {data_dir}; make both with the same digits.")
        val = (val_images, val_targets)

    torch.manual_seed(seed)
    model = MixtureNet(num_classes=len(class_names), width=net.width, dropout=net.dropout, design=net.design)
    _initialise(model, recipe.init, recipe.zero_classifier)
    nhwc = _channels_last(device)
    model = model.to(device)
    if nhwc:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=recipe.weight_decay)
    steps_per_epoch = -(-len(images) // batch_size)
    schedule = _warmup_cosine(optimiser, total=max(1, epochs * steps_per_epoch),
                              warmup=round(recipe.warmup_epochs * steps_per_epoch))
    shuffler = torch.Generator().manual_seed(seed)
    history = []
    started = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(images), generator=shuffler)
        batches = range(0, len(images), batch_size)
        bar = None
        if progress:
            from tqdm import tqdm

            bar = tqdm(batches, desc=f"epoch {epoch}/{epochs}", unit="batch", leave=False)
            batches = bar
        seen = correct = 0
        loss_sum = 0.0
        for s in batches:
            pick = order[s : s + batch_size]
            x = _layout(_normalise(images[pick].to(device), mean, std), nhwc)
            y = targets[pick].to(device)
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            seen += len(pick)
            correct += int((logits.argmax(1) == y).sum())
            loss_sum += float(loss.detach()) * len(pick)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_sum / seen:.3f}", acc=f"{correct / seen:.3f}")
        row = {"epoch": epoch, "loss": loss_sum / seen, "train_acc": correct / seen, "val_acc": None}
        if val is not None:
            row["val_acc"] = evaluate(model, *val, mean=mean, std=std, device=device)
        history.append(row)
        if progress:
            val_text = f"  val acc {row['val_acc']:.4f}" if val is not None else ""
            print(f"epoch {epoch}/{epochs}  loss {row['loss']:.4f}  train acc {row['train_acc']:.4f}{val_text}",
                  flush=True)

    metrics = {
        "train_acc": history[-1]["train_acc"] if history else None,  # running accuracy of the last epoch
        "val_acc": history[-1]["val_acc"] if history else None,
        "epochs": epochs,
        "recipe": asdict(recipe),
        "seconds": time.perf_counter() - started,
        "n_train": len(images),
        "n_val": len(val[0]) if val is not None else 0,
        "history": history,
    }
    checkpoint = {
        "arch": "mixturenet",
        "state_dict": {k: v.cpu().contiguous() for k, v in model.state_dict().items()},
        "config": {**model.config, "mean": list(mean), "std": list(std), "lr": lr, "batch_size": batch_size,
                   "recipe": asdict(recipe), "seed": seed, "data_dir": str(data_dir),
                   "val_dir": str(val_dir) if val_dir else None},
        "class_names": class_names,
        "metrics": metrics,
    }
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    torch.save(checkpoint, partial)
    os.replace(partial, out_file)  # never leave a half-written checkpoint under the real name
    return metrics


def _warmup_cosine(optimiser: torch.optim.Optimizer, *, total: int, warmup: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step factor: linear from 1/warmup to 1 over `warmup` steps, then cosine down to 0 at `total`.
    With warmup=0 it is CosineAnnealingLR(T_max=total)'s curve."""
    import math

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        t = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))

    return torch.optim.lr_scheduler.LambdaLR(optimiser, factor)
