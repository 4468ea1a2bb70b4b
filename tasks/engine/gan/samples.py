"""Generated images as a probe dataset: z per sample index, pictures, segmentations.

Sample ``i`` of seed ``s`` always has the same z (its own RNG stream), so an index in
topk.csv, a page's "seed" and the edit function all name the same picture.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..datasets import Concept
from ..mixture import CATEGORY
from .models import DIGIT_NAMES


def z_dim_of(generator: nn.Module) -> int:
    """The size of a generator's latent vector (its ``z_dim`` attribute)."""
    return int(cast(int, generator.z_dim))


def sample_z(indices: range | list[int], z_dim: int, seed: int = 0) -> torch.Tensor:
    """float [len(indices), z_dim]: z of each sample index, independent of batching."""
    out = torch.empty(len(indices), z_dim)
    for row, i in enumerate(indices):
        out[row] = torch.randn(z_dim, generator=torch.Generator().manual_seed(seed * 1_000_003 + int(i)))
    return out


class GeneratedSamples:
    """The part of the ProbeDataset interface the dissection writers read.

    Concepts are the mixture's: label number d + 1 is digit d, category "object"; 0 is the
    segmenter's background and counts as unlabelled, as in Broden.
    """

    def __init__(self, images: np.ndarray, seed: int) -> None:
        self.images = images  # uint8 [N, H, W, 3]
        self.seed = seed
        self.categories = [CATEGORY]
        self.concepts = [Concept(d + 1, name, CATEGORY) for d, name in enumerate(DIGIT_NAMES)]
        self.class_names = None

    def __len__(self) -> int:
        return len(self.images)

    def image_name(self, i: int) -> str:
        return f"seed{self.seed}/sample_{i:06d}"

    def load_rgb(self, i: int) -> Image.Image:
        return Image.fromarray(self.images[i])
