"""Tiny generators and a rule-based segmenter for the GAN dissection tests, plus slow
per-image references that share no code with the engine's batched paths."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.engine.gan.models import DCGANGenerator


def tiny_generator(seed: int = 0, width: int = 4, z_dim: int = 8) -> DCGANGenerator:
    """A seeded random dcgan32 (layer1 16 units @4x4, layer2 8 @8x8, layer3 4 @16x16), eval mode.

    BatchNorm running stats are perturbed so eval-mode BN is not the identity."""
    torch.manual_seed(seed)
    gen = DCGANGenerator(z_dim=z_dim, size=32, width=width)
    with torch.no_grad():
        for m in gen.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.weight.uniform_(0.5, 1.5)
    return gen.eval()


class BandSegmenter(nn.Module):
    """Label of a pixel = the nearest of 11 grey levels (``centres``).

    A genuine (if simple) segmenter: with levels at quantiles of a generator's output every
    label number 0..10 occurs, so every concept of the vocabulary gets pixels.
    """

    def __init__(self, centres: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("centres", centres.float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -(x - self.centres[None, :, None, None]) ** 2


def band_segmenter_for(gen: nn.Module) -> BandSegmenter:
    with torch.no_grad():
        out = gen(torch.randn(64, gen.z_dim, generator=torch.Generator().manual_seed(99)))
    return BandSegmenter(torch.quantile(out.flatten(), torch.linspace(0.05, 0.95, 11))).eval()


def reference_z(i: int, z_dim: int, seed: int) -> torch.Tensor:
    """The documented z rule, written out again: sample i of seed s."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + i))[None]


@torch.no_grad()
def forward_by_hand(gen: DCGANGenerator, z: torch.Tensor, edit=None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The generator stage by stage for one image; ``edit(name, maps)`` may change a stage's output."""
    x = z.view(1, -1, 1, 1)
    maps = {}
    for k in range(1, gen.stages + 1):
        name = f"layer{k}"
        x = getattr(gen, name)(x)
        if edit is not None:
            x = edit(name, x.clone())
        maps[name] = x
    return gen.output(x), maps


def labels_of(seg: nn.Module, image: torch.Tensor) -> torch.Tensor:
    return seg(image.mean(1, keepdim=True) if image.shape[1] > 1 else image).argmax(1)[0]


def upsampled_mask(maps: torch.Tensor, threshold: float, size=(32, 32)) -> torch.Tensor:
    return F.interpolate(maps[None, None].float(), size=size, mode="bilinear", align_corners=False)[0, 0] > threshold
