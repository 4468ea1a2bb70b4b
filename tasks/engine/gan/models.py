"""Generators, discriminators and segmenters the GAN dissection knows, and their checkpoints.

A generator is any ``nn.Module`` mapping ``z [B, z_dim]`` to images ``[B, C, H, W]`` in
[-1, 1] with a ``z_dim`` attribute; ``GENERATORS`` names the built-in ones and
``load_generator`` reads ``{'arch', 'config', 'state_dict'}`` checkpoints (or a bare
state_dict with the architecture given), through the same safe loading as classifiers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, EngineError
from ..models import load_checked, read_checkpoint, seeded

# Segmenter classes: 0 = background, k = digit k - 1, i.e. the mixture's label numbers.
NUM_SEG_CLASSES = 11
DIGIT_NAMES = [str(d) for d in range(10)]


def _up_block(inputs: int, units: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose2d(inputs, units, 4, 2, 1, bias=False), nn.BatchNorm2d(units), nn.ReLU())


class DCGANGenerator(nn.Module):
    """DCGAN (Radford et al.) sized for 32 or 64 px: z -> 4x4 -> ... -> size, tanh output.

    Named stages ``layer1`` .. ``layerN`` are Sequential(conv, BN, ReLU), so a hook on them
    sees the post-ReLU maps that GAN Dissection reads (the paper's layer r); ``output`` makes
    the picture. Widths halve per stage from ``width * 2**(N-1)``.
    """

    def __init__(self, z_dim: int = 64, size: int = 32, width: int = 32, channels: int = 1) -> None:
        super().__init__()
        if size not in (32, 64):
            raise EngineError(f"the DCGAN generator makes 32 or 64 px images, not {size}")
        self.z_dim, self.size, self.channels = z_dim, size, channels
        self.config = {"z_dim": z_dim, "size": size, "width": width, "channels": channels}
        stages = 3 if size == 32 else 4
        widths = [width * 2 ** (stages - 1 - k) for k in range(stages)]
        self.layer1 = nn.Sequential(nn.ConvTranspose2d(z_dim, widths[0], 4, 1, 0, bias=False),
                                    nn.BatchNorm2d(widths[0]), nn.ReLU())
        for k in range(1, stages):
            self.add_module(f"layer{k + 1}", _up_block(widths[k - 1], widths[k]))
        self.output = nn.Sequential(nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh())
        self.stages = stages

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.view(z.shape[0], -1, 1, 1)
        for k in range(1, self.stages + 1):
            x = getattr(self, f"layer{k}")(x)
        return self.output(x)


class DCGANDiscriminator(nn.Module):
    """The mirror of the generator: strided convs with LeakyReLU down to one logit."""

    def __init__(self, size: int = 32, width: int = 32, channels: int = 1) -> None:
        super().__init__()
        stages = 3 if size == 32 else 4
        layers: list[nn.Module] = []
        inputs = channels
        for k in range(stages):
            units = width * 2**k
            layers += [nn.Conv2d(inputs, units, 4, 2, 1, bias=k == 0)]
            if k > 0:
                layers += [nn.BatchNorm2d(units)]
            layers += [nn.LeakyReLU(0.2)]
            inputs = units
        layers += [nn.Conv2d(inputs, 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


NUM_DIGITS = 10
GATINGS = ("learned", "fixed")
PATHWAY_NORMS = ("scale", "batch")


def digits_of_z(z: torch.Tensor, shown: int = 2) -> torch.Tensor:
    """float [B, 10] multi-hot: the ``shown`` digits a conditional generator draws for each z.

    The digits are the largest of z's first ten values, so a z from N(0, I) picks every set of
    ``shown`` digits equally often and a sample index still names one picture (labels ride in z).
    """
    top = z.reshape(z.shape[0], -1)[:, :NUM_DIGITS].topk(shown, dim=1).indices
    return torch.zeros(z.shape[0], NUM_DIGITS, device=z.device, dtype=z.dtype).scatter_(1, top, 1.0)


class DigitGate(nn.Module):
    """Class-to-channel gates of one layer: channel u is on for an image when a digit it serves is shown.

    ``fixed``: channel u serves digit u // per_digit (a partition by design). ``learned``: logits [10, U]
    trained with the GAN; the forward pass uses the hard 0/1 gate (logit > 0), the backward pass the
    sigmoid's gradient (straight-through), so a gate that is off is exactly off at every step and in eval.
    """

    table: torch.Tensor

    def __init__(self, units: int, gating: str) -> None:
        super().__init__()
        if gating not in GATINGS:
            raise EngineError(f"unknown gating {gating!r}; choose one of {', '.join(GATINGS)}")
        self.gating = gating
        if gating == "fixed":
            per = units // NUM_DIGITS
            table = torch.zeros(NUM_DIGITS, units)
            for d in range(NUM_DIGITS):
                table[d, d * per : (d + 1) * per] = 1.0
            self.register_buffer("table", table)
        else:
            self.logits = nn.Parameter(torch.randn(NUM_DIGITS, units) * 0.5)

    def soft(self) -> torch.Tensor:
        """[10, U] in [0, 1]: the gate's probability (the penalty reads this)."""
        return self.table if self.gating == "fixed" else torch.sigmoid(self.logits)

    def hard(self) -> torch.Tensor:
        """[10, U] of 0/1: the gate actually applied (straight-through gradient when learned)."""
        if self.gating == "fixed":
            return self.table
        soft = torch.sigmoid(self.logits)
        return (self.logits > 0).to(soft.dtype) + (soft - soft.detach())  # exactly 0/1 forward

    def forward(self, digits: torch.Tensor) -> torch.Tensor:
        """[B, U]: 1 where a shown digit (multi-hot [B, 10]) uses the channel."""
        return (digits @ self.hard()).clamp(max=1.0)


class GroupScaleNorm(nn.Module):
    """Scale each of ``groups`` channel groups of each sample by the root mean square over the group's channels
    and positions: x / sqrt(mean of x^2 + eps). No centring, so a group that is all zero stays zero; and one
    factor for the whole map, so a weak activation stays weak beside a strong one (a per-position norm, like
    ProGAN's pixel norm, would lift the faint background of a stroke map to full strength: speckle)."""

    def __init__(self, groups: int, eps: float = 1e-8) -> None:
        super().__init__()
        self.groups, self.eps = groups, eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        g = x.reshape(b, self.groups, c // self.groups, h, w)
        return (g * torch.rsqrt(g.pow(2).mean((2, 3, 4), keepdim=True) + self.eps)).reshape(b, c, h, w)


def gate_of(generator: nn.Module) -> DigitGate | None:
    """The digit gate of a conditional generator's layer2; None for any other generator."""
    gate = getattr(getattr(generator, "layer2", None), "gate", None)
    return gate if isinstance(gate, DigitGate) else None


class GatedStage(nn.Module):
    """conv-transpose, BN, ReLU, then the digit gate: a hook on this module sees the gated maps."""

    def __init__(self, inputs: int, units: int, gating: str) -> None:
        super().__init__()
        self.block = _up_block(inputs, units)
        self.gate = DigitGate(units, gating)

    def forward(self, x: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
        return self.block(x) * self.gate(digits)[:, :, None, None]


class ConditionalGenerator(nn.Module):
    """A class-conditional DCGAN for 32 px canvases whose ``layer2`` channels are gated per digit.

    The shown digits are read from z (``digits_of_z``), so it is called as ``generator(z)`` like any
    generator here. z and the digits' embedding make ``layer1`` (4x4); ``layer2`` (8x8, ``units``
    channels) is a ``GatedStage``: a channel is zeroed unless a shown digit uses it; ``layer3``
    (16x16) and the output are shared by all digits.
    """

    def __init__(self, z_dim: int = 64, width: int = 32, units: int = 200, gating: str = "learned",
                 channels: int = 1, size: int = 32, pathways: bool = False, pathway_norm: str = "scale") -> None:
        super().__init__()
        if pathway_norm not in PATHWAY_NORMS:
            raise EngineError(f"unknown pathway norm {pathway_norm!r}; choose one of {', '.join(PATHWAY_NORMS)}")
        if size != 32 or channels != 1:
            raise EngineError(f"the conditional generator makes 32 px grey images, not {size} px with {channels} "
                              f"channels")
        if z_dim < NUM_DIGITS:
            raise EngineError(f"the conditional generator reads the digits from z's first {NUM_DIGITS} values; "
                              f"z_dim must be at least {NUM_DIGITS}, not {z_dim}")
        if pathways and (gating != "fixed" or units % NUM_DIGITS):
            raise EngineError("per-digit pathways need the fixed partition and a unit count divisible by 10")
        self.z_dim, self.size, self.channels, self.stages, self.pathways = z_dim, size, channels, 3, pathways
        self.pathway_norm = pathway_norm
        self.config = {"z_dim": z_dim, "width": width, "units": units, "gating": gating, "channels": channels,
                       "pathways": pathways, "pathway_norm": pathway_norm}
        self.embed = nn.Linear(NUM_DIGITS, z_dim, bias=False)
        self.layer1 = nn.Sequential(nn.ConvTranspose2d(2 * z_dim, width * 8, 4, 1, 0, bias=False),
                                    nn.BatchNorm2d(width * 8), nn.ReLU())
        self.layer2 = GatedStage(width * 8, units, gating)
        self.output: nn.Module
        if pathways and pathway_norm == "batch":
            # Grouped convs: digit d's layer2 channels feed only its own layer3 channels and its own stroke map,
            # each a small DCGAN stage (BatchNorm per channel, so per digit; a biased output through tanh). A
            # pathway draws only while one of its layer2 channels is on (``strokes``).
            per = max(1, width // 2)
            self.layer3 = nn.Sequential(nn.ConvTranspose2d(units, NUM_DIGITS * per, 4, 2, 1, groups=NUM_DIGITS,
                                                           bias=False), nn.BatchNorm2d(NUM_DIGITS * per), nn.ReLU())
            self.output = nn.ConvTranspose2d(NUM_DIGITS * per, NUM_DIGITS, 4, 2, 1, groups=NUM_DIGITS)
        elif pathways:
            # Grouped convs: digit d's layer2 channels feed only its own layer3 channels and its own stroke map.
            # Every step keeps zero at zero (no bias, a per-digit scale norm, a threshold below zero), so a digit
            # whose channels are all off draws nothing.
            per = max(1, width // 2)
            self.layer3 = nn.Sequential(nn.ConvTranspose2d(units, NUM_DIGITS * per, 4, 2, 1, groups=NUM_DIGITS,
                                                           bias=False), GroupScaleNorm(NUM_DIGITS), nn.ReLU())
            self.output = nn.ConvTranspose2d(NUM_DIGITS * per, NUM_DIGITS, 4, 2, 1, groups=NUM_DIGITS, bias=False)
            self.threshold = nn.Parameter(torch.zeros(NUM_DIGITS))
        else:
            self.layer3 = _up_block(units, width * 2)
            self.output = nn.Sequential(nn.ConvTranspose2d(width * 2, channels, 4, 2, 1), nn.Tanh())

    def _maps(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        digits = digits_of_z(z)
        x = torch.cat([z, self.embed(digits)], dim=1)[:, :, None, None]
        return self.layer2(self.layer1(x), digits)

    def _out(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.layer3(self._maps(z)))

    def strokes(self, z: torch.Tensor) -> torch.Tensor:
        """[B, 10, H, W] in [0, 1): each digit's own stroke map (pathways only). A digit not shown has its
        channels gated off and so draws nothing; one whose units are switched on by an intervention draws,
        which is what insertion needs. ``scale``: strokes above a threshold that is always positive, zero kept
        at zero by every step. ``batch``: the pathway's tanh picture, times 1 while any of its layer2
        channels is on in the sample and 0 when all are off."""
        if not self.pathways:
            raise EngineError("only a generator with per-digit pathways has a stroke map per digit")
        maps = self._maps(z)
        out = self.output(self.layer3(maps))
        if self.pathway_norm == "batch":
            on = maps.detach().reshape(maps.shape[0], NUM_DIGITS, -1).ne(0).any(2).to(out.dtype)
            return (torch.tanh(out) + 1.0) * 0.5 * on[:, :, None, None]
        return torch.tanh(torch.relu(out - nn.functional.softplus(self.threshold)[None, :, None, None]))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not self.pathways:
            return self._out(z)
        return 2.0 * self.strokes(z).amax(1, keepdim=True) - 1.0


SPRITE_CELLS = 4  # a sprite's window on the 8x8 layer2 grid: 4x4 cells of 4 px, 16 px for a digit of up to 15


class Placement(nn.Module):
    """The sprite generator's ``layer2``: passes the placed per-digit maps on, so a hook here sees (and an
    intervention edits) each digit's units on the canvas's 8x8 grid, where the dissection reads them."""

    def forward(self, grid: torch.Tensor) -> torch.Tensor:
        return grid


class SpriteGenerator(nn.Module):
    """A layered class-conditional generator for 32 px canvases of two digits (``sprites32``).

    Each shown digit is drawn as a sprite by a pathway of its own and placed by a layout read from z, as
    layered GANs compose a foreground (Yang et al. 2017, LR-GAN) and as the canvases are made:

    - z's first ten values pick the two shown digits (``digits_of_z``), the next ten their top-left corners
      (``layout``), the rest two style vectors, one per shown digit (lower digit first).
    - A shared, digit-conditioned stem draws a sprite's 4x4 feature cells; ``layer2`` holds ``per_digit``
      channels per digit (channel u serves digit u // per_digit), each sprite's cells placed on the canvas's
      8x8 grid at its corner, every other digit's channels zero.
    - ``layer3`` and ``output`` are grouped convolutions with no bias and no normalisation: digit d's channels
      draw only its own stroke map, and zero maps draw nothing, so removing a digit's units removes its strokes
      and nothing else. Each stroke map moves by the corner's remaining 0-3 px (-1 at the edge), and the
      picture is the brightest stroke per pixel, as the canvases keep the brighter digit where two overlap.

    Trained as a projection cGAN on real digit crops (``render_sprites``: one sprite alone on the grid, which
    the canvas's drawing reproduces exactly wherever the sprite lies), so each pathway is judged on drawing its
    own digit, not on a picture shared with another.
    """

    def __init__(self, z_dim: int = 64, width: int = 32, per_digit: int = 20, render: int = 16, digit_size: int = 14,
                 min_gap: int = 8, smooth: bool = False) -> None:
        super().__init__()
        self.style = (z_dim - 2 * NUM_DIGITS) // 2
        if self.style < 1:
            raise EngineError(f"the sprite generator reads digits and corners from z's first {2 * NUM_DIGITS} "
                              f"values and a style per digit from the rest; z_dim must be at least "
                              f"{2 * NUM_DIGITS + 2}, not {z_dim}")
        if not 1 <= digit_size <= SPRITE_CELLS * 4 - 1:
            raise EngineError(f"the sprite generator draws digits of up to {SPRITE_CELLS * 4 - 1} px on 32 px "
                              f"canvases, not {digit_size} px")
        self.z_dim, self.size, self.channels, self.pathways = z_dim, 32, 1, True
        self.per_digit, self.render, self.digit_size, self.min_gap = per_digit, render, digit_size, min_gap
        self.config = {"z_dim": z_dim, "width": width, "per_digit": per_digit, "render": render,
                       "digit_size": digit_size, "min_gap": min_gap, "smooth": smooth}
        self.smooth = smooth
        self.embed = nn.Linear(NUM_DIGITS, 16, bias=False)
        self.stem = nn.Sequential(nn.ConvTranspose2d(self.style + 16, width * 8, SPRITE_CELLS, 1, 0, bias=False),
                                  nn.BatchNorm2d(width * 8), nn.ReLU())
        self.sprite = nn.Sequential(nn.Conv2d(width * 8, NUM_DIGITS * per_digit, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(NUM_DIGITS * per_digit), nn.ReLU())
        self.layer2 = Placement()
        self.layer3 = nn.Sequential(nn.ConvTranspose2d(NUM_DIGITS * per_digit, NUM_DIGITS * render, 4, 2, 1,
                                                       groups=NUM_DIGITS, bias=False), nn.ReLU())
        self.output = nn.ConvTranspose2d(NUM_DIGITS * render, NUM_DIGITS, 4, 2, 1, groups=NUM_DIGITS, bias=False)

    def _smoothed(self, maps: torch.Tensor) -> torch.Tensor:
        """``smooth``: each stroke map under a fixed 3x3 binomial blur (zero stays zero), as the canvases' digits
        are smooth, scaled up from 8x8; the blur reaches one pixel, inside the drawing's margin."""
        if not self.smooth:
            return maps
        taps = torch.tensor([1.0, 2.0, 1.0], device=maps.device, dtype=maps.dtype)
        kernel = (taps[:, None] * taps[None, :] / 16.0).expand(maps.shape[1], 1, 3, 3)
        return nn.functional.conv2d(maps, kernel, padding=1, groups=maps.shape[1])

    def sprite_features(self, style: torch.Tensor, digit: torch.Tensor) -> torch.Tensor:
        """[N, per_digit, 4, 4]: the cells of sprites of ``digit`` (long [N]) drawn with ``style`` [N, style]."""
        onehot = nn.functional.one_hot(digit, NUM_DIGITS).to(style.dtype)
        h = self.stem(torch.cat([style, self.embed(onehot)], 1)[:, :, None, None])
        cells = self.sprite(h).view(len(digit), NUM_DIGITS, self.per_digit, SPRITE_CELLS, SPRITE_CELLS)
        return cells[torch.arange(len(digit), device=digit.device), digit]

    def render_sprites(self, style: torch.Tensor, digit: torch.Tensor) -> torch.Tensor:
        """[N, 1, 32, 32] in [0, 1): each sprite alone, its cells at cells 2-5 of the grid, so the digit's
        top-left pixel lies at (``SPRITE_AT``, ``SPRITE_AT``); only the sprite's own pathway is run."""
        cells = self.sprite_features(style, digit)
        out = torch.zeros(len(digit), 1, 32, 32, device=cells.device, dtype=cells.dtype)
        conv3: nn.ConvTranspose2d = self.layer3[0]  # type: ignore[assignment]
        per, render = self.per_digit, self.render
        for d in digit.unique().tolist():
            rows = (digit == d).nonzero(as_tuple=True)[0]
            grid = nn.functional.pad(cells[rows], (2, 2, 2, 2))
            h = torch.relu(nn.functional.conv_transpose2d(grid, conv3.weight[d * per:(d + 1) * per], stride=2,
                                                          padding=1))
            drawn = nn.functional.conv_transpose2d(h, self.output.weight[d * render:(d + 1) * render], stride=2,
                                                   padding=1)
            out = out.index_copy(0, rows, torch.tanh(torch.relu(self._smoothed(drawn))))
        return out

    def layout(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(digits long [B, 2] ascending, corners long [B, 2, 2] as (row, column)): the shown digits and their
        top-left pixels, uniform over the canvas like the canvases' own. The second corner is the first of
        four candidates whose box lies ``min_gap`` px or more from the first in rows or columns (the last
        candidate otherwise), as the canvases re-draw a place until the strokes do not touch."""
        z = z.reshape(z.shape[0], -1)
        digits = z[:, :NUM_DIGITS].topk(2, dim=1).indices.sort(1).values  # the digits digits_of_z shows
        span = 32 - self.digit_size + 1
        places = (torch.special.ndtr(z[:, NUM_DIGITS:2 * NUM_DIGITS]) * span).long().clamp(0, span - 1)
        places = places.view(-1, 5, 2)
        first, second = places[:, 0], places[:, 4]
        for k in (3, 2, 1):
            apart = (places[:, k] - first).abs().amax(1) >= self.min_gap
            second = torch.where(apart[:, None], places[:, k], second)
        return digits, torch.stack([first, second], 1)

    def strokes(self, z: torch.Tensor) -> torch.Tensor:
        """[B, 10, 32, 32] in [0, 1): each digit's stroke map; a digit not shown draws only where an
        intervention switches its units on."""
        z = z.reshape(z.shape[0], -1)
        b = z.shape[0]
        digits, corners = self.layout(z)
        styles = z[:, 2 * NUM_DIGITS:2 * NUM_DIGITS + 2 * self.style].reshape(b * 2, self.style)
        flat = digits.reshape(-1)
        cells = self.sprite_features(styles, flat)
        window = corners.reshape(-1, 2) - SPRITE_AT + 2 * 4  # the sprite window's top-left pixel
        at = torch.div(window, 4, rounding_mode="floor").clamp(0, 8 - SPRITE_CELLS)
        sample = torch.arange(b, device=z.device).repeat_interleave(2)
        grid = torch.zeros(b, NUM_DIGITS, self.per_digit, 8, 8, device=z.device, dtype=cells.dtype)
        span = torch.arange(SPRITE_CELLS, device=z.device)
        rows, cols = at[:, 0:1] + span, at[:, 1:2] + span
        grid = grid.index_put((sample[:, None, None, None], flat[:, None, None, None],
                               torch.arange(self.per_digit, device=z.device)[None, :, None, None],
                               rows[:, None, :, None], cols[:, None, None, :]), cells)
        maps = self.layer2(grid.view(b, NUM_DIGITS * self.per_digit, 8, 8))
        # Drawn with a cell of zeros around the grid, so strokes that a move brings onto the canvas are drawn
        # (no bias anywhere: the margin adds nothing), then moved and cut back to 32 px.
        drawn = torch.tanh(torch.relu(self._smoothed(self.output(self.layer3(nn.functional.pad(maps, (1, 1, 1, 1)))))))
        moves = torch.zeros(b, NUM_DIGITS, 2, dtype=torch.long, device=z.device)
        moves[sample, flat] = window - 4 * at
        return shift_maps(drawn, moves, margin=4)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return 2.0 * self.strokes(z).amax(1, keepdim=True) - 1.0


SPRITE_AT = 9  # render_sprites: the digit's top-left pixel in the 32 px crop (its window starts at 8)
MAX_MOVE = 3


def shift_maps(maps: torch.Tensor, moves: torch.Tensor, margin: int = 0) -> torch.Tensor:
    """maps [B, C, H + 2m, W + 2m] with a margin of m px, moved by whole pixels (``moves`` long [B, C, 2],
    down and right, in -3..3) and cut to the [H, W] inside; what moves in from beyond the margin is zero."""
    pad = MAX_MOVE - min(margin, MAX_MOVE)
    padded = nn.functional.pad(maps, (pad,) * 4) if pad else maps
    b, c = maps.shape[:2]
    h, w = maps.shape[2] - 2 * margin, maps.shape[3] - 2 * margin
    start = margin + pad
    rows = torch.arange(h, device=maps.device)[None, None] + start - moves[..., 0:1]
    padded = padded.gather(2, rows[..., None].expand(b, c, h, padded.shape[3]))
    cols = torch.arange(w, device=maps.device)[None, None] + start - moves[..., 1:2]
    return padded.gather(3, cols[:, :, None, :].expand(b, c, h, w))


class ConditionalDiscriminator(nn.Module):
    """The DCGAN discriminator with a projection of the shown digits (Miyato & Koyama 2018):
    logit = w . h + embed(digits) . h, so a picture must show the digits it was made for.

    ``spectral``: every layer under spectral normalisation and no BatchNorm, as Miyato & Koyama pair the
    projection with; it keeps the discriminator from overpowering a small generator on small data.
    ``classify``: a ten-way digit head on the same features as well (AC-GAN, Odena et al. 2017), read by
    ``judge_and_classify``."""

    def __init__(self, size: int = 32, width: int = 32, channels: int = 1, spectral: bool = False,
                 classify: bool = False) -> None:
        super().__init__()
        stages = 3 if size == 32 else 4
        norm = nn.utils.parametrizations.spectral_norm if spectral else (lambda m: m)
        if spectral:
            layers: list[nn.Module] = []
            for k in range(stages):
                layers += [norm(nn.Conv2d(channels if k == 0 else width * 2 ** (k - 1), width * 2**k, 4, 2, 1)),
                           nn.LeakyReLU(0.2)]
        else:
            layers = list(DCGANDiscriminator(size=size, width=width, channels=channels).net)[:-1]
        self.features = nn.Sequential(*layers)
        features = width * 2 ** (stages - 1) * 16
        self.linear = norm(nn.Linear(features, 1))
        self.embed = norm(nn.Linear(NUM_DIGITS, features, bias=False))
        self.classify = nn.Linear(features, NUM_DIGITS) if classify else None

    def forward(self, x: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
        return self.judge_and_classify(x, digits)[0]

    def judge_and_classify(self, x: torch.Tensor, digits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(real-or-fake logit [B], digit logits [B, 10] or None without the head)."""
        h = self.features(x).flatten(1)
        logit = self.linear(h).flatten() + (self.embed(digits) * h).sum(1)
        return logit, (self.classify(h) if self.classify is not None else None)


def _conv(inputs: int, units: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inputs, units, 3, stride, dilation, dilation=dilation, bias=False),
                         nn.BatchNorm2d(units), nn.ReLU())


class DigitSegmenter(nn.Module):
    """A small fully convolutional net: per pixel, background or one of the ten digits.

    Two stride-2 stages and a dilated conv give a receptive field (~35 px) wider than a
    digit, which is what telling a 3 from an 8 needs; a full-resolution skip keeps the
    stroke edges sharp, since the digit masks are exactly the stroke pixels.
    Input: grey images in [-1, 1], [B, 1, H, W] (H, W multiples of 4). Output: logits [B, 11, H, W].
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.config = {"width": width}
        self.stem = _conv(1, width)
        self.down1 = _conv(width, 2 * width, stride=2)
        self.down2 = _conv(2 * width, 4 * width, stride=2)
        self.context = nn.Sequential(_conv(4 * width, 4 * width, dilation=2), _conv(4 * width, 4 * width, dilation=2))
        # 1x1 convs at full resolution: a 3x3 there cost 3/4 of the whole network's time.
        self.head = nn.Sequential(nn.Conv2d(5 * width, 2 * width, 1, bias=False), nn.BatchNorm2d(2 * width), nn.ReLU(),
                                  nn.Conv2d(2 * width, NUM_SEG_CLASSES, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.stem(x)
        deep = self.context(self.down2(self.down1(skip)))
        deep = nn.functional.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.head(torch.cat([skip, deep], dim=1))


# name -> builder(**config). A user's generator joins by adding a builder here (or by
# loading a whole module with unsafe_pickle=True).
GENERATORS: dict[str, Callable[..., nn.Module]] = {
    "dcgan32": lambda **c: DCGANGenerator(**{"size": 32, **c}),
    "dcgan64": lambda **c: DCGANGenerator(**{"size": 64, **c}),
    "cdcgan32": lambda **c: ConditionalGenerator(**c),
    "sprites32": lambda **c: SpriteGenerator(**c),
}
SEGMENTERS: dict[str, Callable[..., nn.Module]] = {"digitseg": lambda **c: DigitSegmenter(**c)}


def _load(kind: str, registry: Mapping[str, Callable[..., nn.Module]], arch: str | None,
          checkpoint: str | Path | None, config: Mapping[str, Any] | None, unsafe_pickle: bool) -> nn.Module:
    meta: Mapping[str, Any] = {}
    state: Mapping[str, Any] | None = None
    if checkpoint is not None:
        loaded = read_checkpoint(Path(checkpoint), unsafe_pickle)
        if isinstance(loaded, nn.Module):  # only reachable with unsafe_pickle=True
            return loaded.eval()
        if not isinstance(loaded, Mapping):
            raise CheckpointError(f"The {kind} checkpoint {checkpoint} holds a {type(loaded).__name__}, not a "
                                  f"state_dict.")
        meta, state = (loaded, loaded["state_dict"]) if isinstance(loaded.get("state_dict"), Mapping) else ({}, loaded)
        if meta.get("kind") not in (None, kind):
            raise CheckpointError(f"{checkpoint} is a {meta['kind']} checkpoint, not a {kind}.")
    arch = arch or meta.get("arch")
    if arch is None or arch not in registry:
        raise EngineError(f"Unknown {kind} architecture {arch!r}; choose one of {', '.join(sorted(registry))}.")
    cfg = {**dict(meta.get("config") or {}), **dict(config or {})}
    try:
        model = seeded(lambda: registry[arch](**cfg)) if state is None else registry[arch](**cfg)
    except TypeError as exc:
        raise CheckpointError(f"The {kind} {arch!r} does not accept the config {cfg}: {exc}") from exc
    if state is not None and checkpoint is not None:
        load_checked(model, {k.removeprefix("module."): v for k, v in state.items()}, Path(checkpoint), arch)
    return model.eval()


def load_generator(arch: str | None = None, checkpoint: str | Path | None = None, *,
                   config: Mapping[str, Any] | None = None, unsafe_pickle: bool = False) -> nn.Module:
    """A generator in eval mode on the CPU. ``arch`` may be omitted when the checkpoint names it;
    no checkpoint gives seeded random weights (tests, demos)."""
    model = _load("generator", GENERATORS, arch, checkpoint, config, unsafe_pickle)
    if not hasattr(model, "z_dim"):
        raise CheckpointError("the generator has no z_dim attribute; GAN dissection needs to know the size of z")
    return model


def load_segmenter(arch: str | None = None, checkpoint: str | Path | None = None, *,
                   config: Mapping[str, Any] | None = None, unsafe_pickle: bool = False) -> nn.Module:
    """A segmenter (images [B, 1, H, W] in [-1, 1] -> logits [B, 11, H, W]) in eval mode."""
    return _load("segmenter", SEGMENTERS, arch, checkpoint, config, unsafe_pickle)


def save_checkpoint(model: nn.Module, path: str | Path, *, kind: str, arch: str,
                    extra: Mapping[str, Any] | None = None) -> None:
    """``{'kind', 'arch', 'config', 'state_dict', ...}`` written atomically (never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"kind": kind, "arch": arch, "config": dict(getattr(model, "config", {})),
               "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}, **dict(extra or {})}
    partial = path.with_name(path.name + ".partial")
    torch.save(payload, partial)
    partial.replace(path)


def to_grey(images: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] in [-1, 1] -> [B, 1, H, W]: what the segmenter reads."""
    return images if images.shape[1] == 1 else images.mean(dim=1, keepdim=True)


def to_uint8_rgb(images: torch.Tensor) -> torch.Tensor:
    """[B, C, H, W] in [-1, 1] -> uint8 [B, H, W, 3] for pictures."""
    x = ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x[:, :3].permute(0, 2, 3, 1).contiguous()


PICTURE_MIN_SIZE = 128  # people judge a unit's region on pictures at least this large


def to_display_rgb(images: torch.Tensor, min_size: int = PICTURE_MIN_SIZE) -> torch.Tensor:
    """[B, C, H, W] in [-1, 1] -> uint8 [B, H*f, W*f, 3]: the pictures people judge a unit by.

    Enlarged by the smallest whole factor f that reaches ``min_size`` (nearest neighbour: strokes stay
    sharp). A grey generator draws light strokes on black; a highlight that dims what lies outside
    the unit's region leaves black black, so grey pictures are shown as dark strokes on white, where
    the dimmed part reads as a grey veil around the bright region.
    """
    rgb = to_uint8_rgb(images)
    if images.shape[1] == 1:
        rgb = 255 - rgb
    factor = max(1, -(-int(min_size) // max(1, min(int(rgb.shape[1]), int(rgb.shape[2])))))
    if factor > 1:
        rgb = rgb.repeat_interleave(factor, dim=1).repeat_interleave(factor, dim=2)
    return rgb.contiguous()


@torch.no_grad()
def segment(segmenter: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Label numbers per pixel, long [B, H, W]: 0 background, d + 1 digit d."""
    out = [segmenter(to_grey(images[s : s + batch_size]).float()).argmax(1) for s in range(0, len(images), batch_size)]
    return torch.cat(out) if out else torch.zeros((0, *images.shape[-2:]), dtype=torch.long)
