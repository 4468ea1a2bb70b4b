"""DCGAN trainer for mixture-of-digits canvases, made for a few CPU minutes.

Non-saturating GAN loss with Adam(2e-4, beta1 0.5) as in DCGAN; the whole dataset sits in
one uint8 tensor so a step costs only the two networks' work. The checkpoint is written
every ``checkpoint_every`` steps and at the end; ``resume=True`` continues from it.
"""

from __future__ import annotations

from dataclasses import dataclass

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, EngineError
from ..models import default_device
from .data import load_canvases
from .models import GENERATORS, DCGANDiscriminator, save_checkpoint


def _init_dcgan(module: nn.Module) -> None:
    # DCGAN's N(0, 0.02) init: with PyTorch's default init the generator starts saturated
    # and a short CPU run spends its first few hundred steps recovering.
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class GanRecipe:
    """How a DCGAN is trained: steps of Adam (2e-4, betas 0.5/0.999) on batches of real canvases."""

    steps: int = 3000
    batch_size: int = 64
    z_dim: int = 64
    width: int = 32
    lr: float = 2e-4


def train_gan(
    data_dir: str | Path,
    out_file: str | Path,
    *,
    recipe: GanRecipe = GanRecipe(),
    seed: int = 0,
    checkpoint_every: int = 500,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
) -> dict:
    """Train a DCGAN generator on the canvases of ``data_dir``; returns metrics.

    The checkpoint (``load_generator(checkpoint=out_file)`` reads it) holds the generator;
    the discriminator and optimiser states ride along under 'train_state' for resuming.
    """
    steps, batch_size, z_dim, width, lr = recipe.steps, recipe.batch_size, recipe.z_dim, recipe.width, recipe.lr
    if steps < 1 or batch_size < 2:
        raise EngineError(f"steps must be >= 1 and batch_size >= 2 (got {steps}, {batch_size})")
    device = device or default_device()
    data = load_canvases(data_dir)
    size = int(data.images.shape[-1])
    arch = {32: "dcgan32", 64: "dcgan64"}.get(size)
    if arch is None or data.images.shape[-2] != size:
        raise EngineError(f"the canvases of {data_dir} are {tuple(data.images.shape[-2:])}; the DCGAN makes 32x32 or "
                          f"64x64")
    torch.manual_seed(seed)
    gen = GENERATORS[arch](z_dim=z_dim, width=width).to(device)
    disc = DCGANDiscriminator(size=size, width=width).to(device)
    gen.apply(_init_dcgan)
    disc.apply(_init_dcgan)
    opt_g = torch.optim.Adam(gen.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    start, history, prior_seconds = 0, [], 0.0
    out_file = Path(out_file)
    if resume and out_file.is_file():
        state = torch.load(out_file, map_location="cpu", weights_only=True)
        if "train_state" not in state:
            raise CheckpointError(f"{out_file} has no training state to resume from")
        gen.load_state_dict(state["state_dict"])
        disc.load_state_dict(state["train_state"]["discriminator"])
        opt_g.load_state_dict(state["train_state"]["opt_g"])
        opt_d.load_state_dict(state["train_state"]["opt_d"])
        start, history = int(state["metrics"]["steps"]), list(state["metrics"]["history"])
        prior_seconds = float(state["metrics"]["seconds"])  # so "seconds" stays the whole training time
    shuffler = torch.Generator().manual_seed(seed + start)
    started = time.perf_counter()
    from tqdm import tqdm

    bar = tqdm(range(start, steps), desc="gan", unit="step", initial=start, total=steps, disable=not progress)
    gen.train()
    disc.train()
    loss_d_avg = loss_g_avg = 0.0

    def save(done: int) -> dict:
        metrics = {"steps": done, "seconds": prior_seconds + time.perf_counter() - started, "loss_d": loss_d_avg,
                   "loss_g": loss_g_avg, "n_train": len(data), "size": size, "history": history}
        save_checkpoint(gen, out_file, kind="generator", arch=arch, extra={
            "metrics": metrics, "data_dir": str(data_dir),
            "train_state": {"discriminator": disc.state_dict(), "opt_g": opt_g.state_dict(),
                            "opt_d": opt_d.state_dict()},
        })
        return metrics

    for step in bar:
        real = data.as_input(torch.randint(len(data), (batch_size,), generator=shuffler)).to(device)
        z = torch.randn(batch_size, z_dim, generator=shuffler).to(device)
        fake = gen(z)
        # Discriminator: real -> 1, fake -> 0 (fake detached: this step must not move G).
        loss_d = F.binary_cross_entropy_with_logits(disc(real), torch.ones(batch_size, device=device)) + \
            F.binary_cross_entropy_with_logits(disc(fake.detach()), torch.zeros(batch_size, device=device))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # Generator: the non-saturating loss -log D(G(z)) gives strong gradients early on.
        loss_g = F.binary_cross_entropy_with_logits(disc(fake), torch.ones(batch_size, device=device))
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        loss_d_avg = 0.95 * loss_d_avg + 0.05 * float(loss_d.detach()) if step > start else float(loss_d.detach())
        loss_g_avg = 0.95 * loss_g_avg + 0.05 * float(loss_g.detach()) if step > start else float(loss_g.detach())
        if progress:
            bar.set_postfix(loss_d=f"{loss_d_avg:.3f}", loss_g=f"{loss_g_avg:.3f}")
        if (step + 1) % 100 == 0:
            history.append({"step": step + 1, "loss_d": loss_d_avg, "loss_g": loss_g_avg})
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            save(step + 1)
    gen.eval()
    return save(steps)
