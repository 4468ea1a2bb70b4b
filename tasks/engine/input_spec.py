"""The input an architecture's published weights expect (shared by the catalogue and the timm bridge)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class InputSpec:
    """What an architecture's published weights expect: a size x size image normalised by mean/std."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    fixed: bool  # True: the network only accepts `size` (or the size it was built for)
