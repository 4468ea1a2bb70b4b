"""DCGAN trainer for mixture-of-digits canvases, made for a few CPU minutes.

Non-saturating GAN loss with Adam(2e-4, beta1 0.5) as in DCGAN; the whole dataset sits in
one uint8 tensor so a step costs only the two networks' work. The checkpoint is written
every ``checkpoint_every`` steps and at the end; ``resume=True`` continues from it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CheckpointError, EngineError
from ..models import default_device
from .data import DigitCrops, digit_crops, load_canvases
from .models import (
    GENERATORS, SPRITE_AT, ConditionalDiscriminator, ConditionalGenerator, DCGANDiscriminator, DigitGate,
    SpriteGenerator, digits_of_z, gate_of, NUM_DIGITS, save_checkpoint,
)


def _init_dcgan(module: nn.Module, *, kaiming_groups: bool = False) -> None:
    # DCGAN's N(0, 0.02) init: with PyTorch's default init the generator starts saturated
    # and a short CPU run spends its first few hundred steps recovering. ``kaiming_groups``: the grouped
    # convs of threshold pathways, which no BatchNorm rescales, get He's init instead.
    if kaiming_groups and isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)) and module.groups > 1:
        nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
    elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


@dataclass(frozen=True)
class GanRecipe:
    """How a DCGAN is trained: steps of Adam (2e-4, betas 0.5/0.999) on batches of real canvases.

    ``conditional`` trains ``cdcgan32`` (32 px only): the generator is told the canvas's digits and its
    ``layer2`` has ``units`` channels gated per digit (``gating``: "fixed" partition or "learned" gates);
    the discriminator projects the digits. ``layered`` (pathways only): the discriminator judges the ten
    stroke maps as ten channels against real canvases split by their exact digit masks (``Canvases.as_layers``),
    so pathway d is judged on whether it draws a real digit d, not only on the picture they make together.
    Learned gates carry a stated prior as a penalty of weight ``gate_weight``: each digit uses at most
    ``digit_units`` channels and each channel serves at most one digit.

    ``sprites`` trains ``sprites32`` instead (32 px only; ``units`` / 10 layer2 channels per digit): each
    step's fakes are single sprites of random digits and styles, its reals the canvases' digits cut out
    alone at the same place in the crop (``digit_crops``), both judged by a projection discriminator under
    spectral normalisation, so each pathway learns to draw its own digit; the canvas's layout comes from z,
    as the canvases' own does. ``classify_weight`` > 0 (sprites only) adds AC-GAN's digit head to the
    discriminator: its cross-entropy on the real crops' digits trains it, and the same on the fakes' digits,
    with that weight, trains the generator, which binds each pathway to its digit more firmly than the
    projection alone. ``smooth`` (sprites only) blurs each stroke map with a fixed 3x3 binomial kernel
    (``SpriteGenerator.smooth``): the canvases' digits are scaled up from 8x8 and have no fine detail, and
    without the blur the drawing stages leave speckle that the segmenter reads as other digits.

    ``ema`` > 0 writes the exponential moving average of the generator's weights as the checkpoint's generator
    (``ema_decay``: that decay, lower over the first steps so the starting weights fade; BatchNorm statistics
    copied from the trained generator), which smooths the step-to-step swings of a GAN; the trained weights
    ride along under 'train_state' for resuming.
    """

    steps: int = 3000
    batch_size: int = 64
    z_dim: int = 64
    width: int = 32
    lr: float = 2e-4
    conditional: bool = False
    units: int = 256
    gating: str = "learned"
    pathways: bool = False
    digit_units: int = 16
    gate_weight: float = 1.0
    gate_lr: float = 1e-2
    layered: bool = False
    pathway_norm: str = "scale"
    sprites: bool = False
    classify_weight: float = 0.0
    smooth: bool = False
    ema: float = 0.0


def gate_penalty(soft: torch.Tensor, digit_units: int) -> torch.Tensor:
    """The learned gates' prior on their probabilities [10, U]: a digit's expected channel count above
    ``digit_units`` and a channel's expected digit count above 1 both cost, in channels."""
    over_budget = F.relu(soft.sum(1) - digit_units).sum()
    shared = F.relu(soft.sum(0) - 1.0).sum()
    return (over_budget + shared) / soft.shape[1]


def gate_figures(table: torch.Tensor, gating: str) -> dict:
    """What the class-to-channel gates [10, U] of 0/1 came to: channels per digit, shared and unused ones."""
    per_channel = table.sum(0)
    return {"gating": gating, "units_per_digit": [int(v) for v in table.sum(1)],
            "shared_units": int((per_channel > 1).sum()), "unused_units": int((per_channel == 0).sum()),
            "units": int(table.shape[1])}


def ema_decay(ema: float, step: int) -> float:
    """The moving average's decay after step ``step`` (from 0): ``ema``, but at most (1 + step) / (10 + step),
    so the random starting weights weigh little once a few hundred steps are averaged."""
    return min(ema, (1.0 + step) / (10.0 + step))


def _digit_size(data_dir: str | Path) -> int:
    """The canvases' digit size from their meta.json (the sprite generator draws digits that size)."""
    import json

    try:
        return int(json.loads((Path(data_dir) / "meta.json").read_text())["digit_size"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f"{data_dir} has no readable meta.json with the digits' size: {exc}") from exc


def shown_digits(labels: torch.Tensor) -> torch.Tensor:
    """float [N, 10] multi-hot: which digits each label map [N, H, W] shows (label number = digit + 1)."""
    flat = labels.reshape(labels.shape[0], -1)
    return torch.stack([(flat == d + 1).any(1) for d in range(10)], dim=1).float()


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
    sprites = recipe.sprites
    conditional = recipe.conditional and not sprites
    layered = conditional and recipe.layered
    disc: nn.Module
    crops: DigitCrops | None = None
    real_y: torch.Tensor | None
    fake_y: torch.Tensor | None
    if sprites:
        if size != 32:
            raise EngineError(f"the sprite generator makes 32 px canvases; {data_dir} holds {size} px ones")
        if recipe.units % NUM_DIGITS:
            raise EngineError(f"the sprite generator gives each digit units / 10 layer2 channels; {recipe.units} "
                              f"is not divisible by 10")
        arch = "sprites32"
        gen: nn.Module = SpriteGenerator(z_dim=z_dim, width=width, per_digit=recipe.units // NUM_DIGITS,
                              digit_size=_digit_size(data_dir), smooth=recipe.smooth).to(device)
        crops = digit_crops(data_dir, data, SPRITE_AT)
        disc = ConditionalDiscriminator(size=size, width=width, channels=1, spectral=True,
                                        classify=recipe.classify_weight > 0).to(device)
    elif conditional:
        if size != 32:
            raise EngineError(f"the conditional generator makes 32 px canvases; {data_dir} holds {size} px ones")
        arch = "cdcgan32"
        gen = GENERATORS[arch](z_dim=z_dim, width=width, units=recipe.units, gating=recipe.gating,
                               pathways=recipe.pathways,
                               **({"pathway_norm": recipe.pathway_norm} if recipe.pathways else {})).to(device)
        if recipe.layered and not recipe.pathways:
            raise EngineError("a layered discriminator needs the generator's per-digit pathways")
        disc = ConditionalDiscriminator(size=size, width=width, channels=NUM_DIGITS if recipe.layered else 1).to(device)
        real_digits = shown_digits(data.labels)
    else:
        gen = GENERATORS[arch](z_dim=z_dim, width=width).to(device)
        disc = DCGANDiscriminator(size=size, width=width).to(device)
    # Grouped convs that no BatchNorm rescales: the threshold pathways' and the sprites' drawing stages.
    threshold_pathways = sprites or (getattr(gen, "pathways", False) and getattr(gen, "pathway_norm", None) == "scale")
    gen.apply(lambda m: _init_dcgan(m, kaiming_groups=threshold_pathways))
    if not sprites:  # a spectrally normalised discriminator keeps PyTorch's init, as Miyato & Koyama's does
        disc.apply(_init_dcgan)
    gate = gate_of(gen) or DigitGate(1, "fixed")  # a fixed gate has no parameters: no penalty, no figures
    gates = [p for n, p in gen.named_parameters() if n.endswith("gate.logits")]
    others = [p for n, p in gen.named_parameters() if not n.endswith("gate.logits")]
    groups = [{"params": others}] + ([{"params": gates, "lr": recipe.gate_lr}] if gates else [])
    opt_g = torch.optim.Adam(groups, lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(disc.parameters(), lr=lr, betas=(0.5, 0.999))
    if not 0.0 <= recipe.ema < 1.0:
        raise EngineError(f"ema is a decay in [0, 1), not {recipe.ema}")
    average = copy.deepcopy(gen) if recipe.ema else None
    start, history, prior_seconds = 0, [], 0.0
    out_file = Path(out_file)
    if resume and out_file.is_file():
        state = torch.load(out_file, map_location="cpu", weights_only=True)
        if "train_state" not in state:
            raise CheckpointError(f"{out_file} has no training state to resume from")
        trained = state["train_state"].get("generator")
        gen.load_state_dict(trained if trained is not None else state["state_dict"])
        if average is not None:
            average.load_state_dict(state["state_dict"])
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
                   "loss_g": loss_g_avg, "n_train": len(data), "size": size, "history": history,
                   "threads": torch.get_num_threads()}
        if conditional:
            metrics["gates"] = gate_figures(gate.hard().detach(), recipe.gating)
        train_state = {"discriminator": disc.state_dict(), "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict()}
        if average is not None:
            metrics["ema"] = recipe.ema
            train_state["generator"] = {k: v.detach().cpu() for k, v in gen.state_dict().items()}
        save_checkpoint(average if average is not None else gen, out_file, kind="generator", arch=arch, extra={
            "metrics": metrics, "data_dir": str(data_dir), "train_state": train_state})
        return metrics

    def judge(images: torch.Tensor, digits: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The discriminator's logit and, with a digit head (sprites), its digit logits."""
        if isinstance(disc, ConditionalDiscriminator) and digits is not None:
            return disc.judge_and_classify(images, digits)
        return disc(images), None

    one_hot = torch.eye(NUM_DIGITS, device=device)

    for step in bar:
        if crops is not None and isinstance(gen, SpriteGenerator):
            # One sprite per fake: a random digit and style; the reals are digits cut out alone.
            pick = torch.randint(len(crops), (batch_size,), generator=shuffler)
            real, real_y = crops.as_input(pick).to(device), one_hot[crops.digits[pick].to(device)]
            drawn = torch.randint(NUM_DIGITS, (batch_size,), generator=shuffler).to(device)
            style = torch.randn(batch_size, gen.style, generator=shuffler).to(device)
            judged, fake_y = 2.0 * gen.render_sprites(style, drawn) - 1.0, one_hot[drawn]
        else:
            pick = torch.randint(len(data), (batch_size,), generator=shuffler)
            real = (data.as_layers(pick) if layered else data.as_input(pick)).to(device)
            z = torch.randn(batch_size, z_dim, generator=shuffler).to(device)
            real_y = real_digits[pick].to(device) if conditional else None
            fake_y = digits_of_z(z) if conditional else None
            # What the discriminator judges: the picture, or with ``layered`` each pathway's strokes in [-1, 1].
            judged = 2.0 * gen.strokes(z) - 1.0 if layered and isinstance(gen, ConditionalGenerator) else gen(z)
        # Discriminator: real -> 1, fake -> 0 (fake detached: this step must not move G).
        real_logit, real_class = judge(real, real_y)
        loss_d = F.binary_cross_entropy_with_logits(real_logit, torch.ones(batch_size, device=device)) + \
            F.binary_cross_entropy_with_logits(judge(judged.detach(), fake_y)[0],
                                               torch.zeros(batch_size, device=device))
        if real_class is not None and real_y is not None:
            loss_d = loss_d + F.cross_entropy(real_class, real_y.argmax(1))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # Generator: the non-saturating loss -log D(G(z)) gives strong gradients early on.
        fake_logit, fake_class = judge(judged, fake_y)
        loss_g = F.binary_cross_entropy_with_logits(fake_logit, torch.ones(batch_size, device=device))
        if fake_class is not None and fake_y is not None:
            loss_g = loss_g + recipe.classify_weight * F.cross_entropy(fake_class, fake_y.argmax(1))
        if gates:
            loss_g = loss_g + recipe.gate_weight * gate_penalty(gate.soft(), recipe.digit_units)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        if average is not None:
            decay = ema_decay(recipe.ema, step)
            with torch.no_grad():
                for kept, now in zip(average.parameters(), gen.parameters()):
                    kept.lerp_(now, 1.0 - decay)
                for kept_buffer, now_buffer in zip(average.buffers(), gen.buffers()):
                    kept_buffer.copy_(now_buffer)
        loss_d_avg = 0.95 * loss_d_avg + 0.05 * float(loss_d.detach()) if step > start else float(loss_d.detach())
        loss_g_avg = 0.95 * loss_g_avg + 0.05 * float(loss_g.detach()) if step > start else float(loss_g.detach())
        if progress:
            bar.set_postfix(loss_d=f"{loss_d_avg:.3f}", loss_g=f"{loss_g_avg:.3f}")
        if (step + 1) % 100 == 0:
            history.append({"step": step + 1, "loss_d": loss_d_avg, "loss_g": loss_g_avg})
        if checkpoint_every and (step + 1) % checkpoint_every == 0 and step + 1 < steps:
            save(step + 1)
    gen.eval()
    if average is not None:
        average.eval()
    return save(steps)
