"""What a dissection is asked to do: ``DissectOptions`` (layers, statistics, budgets, resume)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import EngineError
from .iou import IOU_RULES
from .plan import SPILL_MODES, parse_size
from .render import HIGHLIGHTS

Progress = Callable[[str, float], None] | None  # progress(stage, fraction done)


@dataclass
class DissectOptions:
    layers: list[str]
    top_k: int = 10
    quantile: float = 0.005
    iou_rule: str = "lite"
    batch_size: int = 32
    device: str = "cpu"
    thresholds: dict[str, np.ndarray] | None = None
    render: bool = True
    render_k: int | None = None  # exemplars rendered per unit (default top_k)
    highlight: str = "overlay"  # or "outline"
    # Additions beyond the contract:
    num_workers: int = 0  # DataLoader workers decoding images
    cache_dtype: str = "float32"  # "float16" lets the planner halve a spill that would not fit
    cache_dir: str | None = None  # stage files and spill (default: out_dir/.dissect-cache)
    image_format: str = "jpg"
    progress_bar: bool = True
    # Bounded resources (see plan.py): per layer, spill its maps when they fit disk_budget,
    # else forward the images a second time. "always"/"never" force one way.
    disk_budget: int | str = 2_000_000_000
    memory_budget: int | str = 1_000_000_000  # running statistics (exact quantile, IoU counts)
    spill: str = "auto"
    resume: bool = False  # reuse the stage files of a killed run with the same inputs
    checkpoint_every: int = 50  # batches per chunk between stage files
    count_threads: int | None = None  # counting pass over a spill on the CPU: threads (None: torch's thread count)
    threshold_method: str = "auto"  # "exact" (running top-m), "radix" (bounded, one more sweep)
    channels_last: bool = False  # NHWC convolutions (faster on some CPUs and on CUDA)
    grid: tuple[int, int] | None = None  # (height, width) of token layers whose tokens are not a square grid

    def validate(self) -> None:
        if not self.layers:
            raise EngineError("no layer to dissect: give at least one, e.g. layers=['layer4']")
        if self.top_k < 1:
            raise EngineError(f"top_k must be at least 1, got {self.top_k}")
        if not 0.0 < self.quantile < 1.0:
            raise EngineError(f"quantile must lie strictly between 0 and 1, got {self.quantile} (NetDissect: 0.005)")
        if self.iou_rule not in IOU_RULES:
            raise EngineError(f"unknown IoU rule '{self.iou_rule}'; choose one of {', '.join(IOU_RULES)}")
        if self.highlight not in HIGHLIGHTS:
            raise EngineError(f"unknown highlight '{self.highlight}'; choose one of {', '.join(HIGHLIGHTS)}")
        if self.batch_size < 1:
            raise EngineError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.cache_dtype not in ("float32", "float16"):
            raise EngineError(f"cache_dtype must be float32 or float16, got {self.cache_dtype}")
        if self.spill not in SPILL_MODES:
            raise EngineError(f"unknown spill mode '{self.spill}'; choose one of {', '.join(SPILL_MODES)}")
        if self.checkpoint_every < 1:
            raise EngineError(f"checkpoint_every must be at least 1 batch, got {self.checkpoint_every}")
        if self.count_threads is not None and self.count_threads < 1:
            raise EngineError(f"count_threads must be at least 1 (or None for torch's thread count), got "
                              f"{self.count_threads}")
        if self.grid is not None and (len(self.grid) != 2 or min(self.grid) < 1):
            raise EngineError(f"grid must be (height, width) in tokens, both at least 1, got {self.grid}")
        for name in ("disk_budget", "memory_budget"):
            if parse_size(getattr(self, name)) < 0:
                raise EngineError(f"{name} cannot be negative")


def default_workers() -> int:
    """Decoding in worker processes overlaps it with the forward pass; keep a core for torch."""
    return max(1, min(4, (os.cpu_count() or 2) // 2))


def add_resource_arguments(p: argparse.ArgumentParser) -> None:
    """The command-line face of the resource fields (budgets, spill, thresholds, cache dtype, layout)."""
    p.add_argument("--disk-budget", default="2GB", help="largest feature-map spill, e.g. 2GB, 500MB, 0 (recompute all)")
    p.add_argument("--memory-budget", default="1GB", help="largest running-statistics state (exact quantile, IoU "
                                                          "counts); larger exact states switch to radix thresholds")
    p.add_argument("--spill", choices=["auto", "always", "never"], default="auto",
                   help="auto: spill a layer when it fits the disk budget, else forward the images again")
    p.add_argument("--threshold-method", choices=["auto", "exact", "radix"], default="auto",
                   help="auto: exact one-sweep thresholds while a layer's state stays under 256 MB and all fit "
                        "--memory-budget, else radix (same thresholds, bounded memory, one more pass over the layer)")
    p.add_argument("--cache-dtype", choices=["float32", "float16"], default="float32",
                   help="float16: let the planner halve a spill that would not fit at float32")
    # NHWC convolutions are faster for resnet18 on CPUs with AVX and the usual win on CUDA.
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True,
                   help="NHWC convolutions (default on; --no-channels-last turns them off)")
