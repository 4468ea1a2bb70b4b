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


class ConditionalDiscriminator(nn.Module):
    """The DCGAN discriminator with a projection of the shown digits (Miyato & Koyama 2018):
    logit = w . h + embed(digits) . h, so a picture must show the digits it was made for."""

    def __init__(self, size: int = 32, width: int = 32, channels: int = 1) -> None:
        super().__init__()
        base = DCGANDiscriminator(size=size, width=width, channels=channels)
        self.features = nn.Sequential(*list(base.net)[:-1])
        features = width * 2 ** ((3 if size == 32 else 4) - 1) * 16
        self.linear = nn.Linear(features, 1)
        self.embed = nn.Linear(NUM_DIGITS, features, bias=False)

    def forward(self, x: torch.Tensor, digits: torch.Tensor) -> torch.Tensor:
        h = self.features(x).flatten(1)
        return self.linear(h).flatten() + (self.embed(digits) * h).sum(1)


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
