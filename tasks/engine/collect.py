"""Sweeping a dataset for dissection: forward passes with captured layers, and the two
mergeable collectors (top images + thresholds; IoU counts) every driver shares."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .capture import LayerCapture
from .datasets import Batch, ProbeDataset, ProbeLoader, size_grouped_batches
from .errors import EngineError
from .iou import IouCounts, Vocabulary
from .options import DissectOptions, Progress
from .plan import DissectPlan, PlanRequest, make_plan, parse_size
from .runningstats import RadixQuantile, RunningQuantile, RunningTopK, quantile_from_state


class ImageNames(Protocol):
    """What a collector's state reads of its dataset: the names of skipped images."""

    def image_name(self, i: int) -> str: ...



def _malloc_trim():
    """glibc's malloc_trim, or None elsewhere (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError, TypeError):
        return None


_TRIM = _malloc_trim()


def release_free_memory() -> None:
    """Hand the heap's free pages back to the system. Between batches the activations of a
    forward pass are freed, but glibc keeps the pages of its heap (allocations under its mmap
    threshold, up to 32 MB), which fragment: a plain forward pass's peak RSS creeps up over the
    batches (resnet18 at batch 32: 980 -> 1150-1200 MiB in 31 batches; with a trim after each batch it
    stays at 975-1010 MiB, for 0.6 ms a call and 1-2% of forward time in re-faulted pages)."""
    if _TRIM is not None:
        _TRIM(0)


def vocabulary_of(dataset: ProbeDataset) -> Vocabulary | None:
    if not dataset.categories or not dataset.concepts:
        return None  # an unlabelled dataset: top images and thresholds only
    return Vocabulary.from_concepts(dataset.concepts, dataset.categories)


def _prepare(model: nn.Module, options: DissectOptions) -> torch.device:
    device = torch.device(options.device)
    model.to(device).eval()
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    return device


def forward_batches(
    model: nn.Module, dataset: ProbeDataset, options: DissectOptions, batches: list[list[int]], layers: list[str],
    stage: str, progress: Progress, start: int = 0,
) -> Iterator[tuple[int, Batch, dict[str, torch.Tensor] | None]]:
    """Forward planned batches ``start..`` once; yields (position, batch, layer outputs).

    Every position is yielded, a batch of unreadable images with ``None`` outputs, so a
    resumed sweep can count where it stopped.
    """
    device = _prepare(model, options)
    cuda = device.type == "cuda"
    loader = ProbeLoader(dataset, batches[start:], options.num_workers, pin_memory=cuda)
    total = max(1, sum(len(b) for b in batches))
    done = sum(len(b) for b in batches[:start])
    memory_format = torch.channels_last if options.channels_last else torch.contiguous_format
    # Inference mode covers the forward pass only, never a yield: a mode entered in a generator
    # would stay on in the caller's loop body and end wherever the generator happens to close.
    with LayerCapture(model, layers, grid=options.grid) as capture:
        bar = tqdm(loader.every_batch(), desc=stage, unit="batch", total=len(loader), disable=not options.progress_bar,
                   leave=False)
        for pos, batch in enumerate(bar, start=start):
            outputs = images = None
            if len(batch):
                with torch.inference_mode():
                    images = batch.images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                    outputs = {k: v.contiguous() for k, v in capture.run(images).items()}
            yield pos, batch, outputs
            outputs = images = batch = None
            if device.type == "cpu":
                release_free_memory()  # the batch's activations are freed by now (see release_free_memory)
            done += len(batches[pos])
            if progress is not None:
                progress(stage, min(1.0, done / total))


def sweep(
    model: nn.Module, dataset: ProbeDataset, options: DissectOptions, indices, stage: str, progress: Progress
) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
    """Forward every batch once, yielding the batch and its captured layer outputs."""
    chosen = range(len(dataset)) if indices is None else indices
    batches = size_grouped_batches(dataset, chosen, options.batch_size)
    for _, batch, outputs in forward_batches(model, dataset, options, batches, options.layers, stage, progress):
        if outputs is not None:
            yield batch, outputs


class StatsCollector:
    """Running top-k and quantile per layer (quantile skipped where thresholds are given)."""

    def __init__(
        self, options: DissectOptions, expected_images: int, values_per_image: dict[str, int] | None = None,
        radix: set[str] | None = None,
    ) -> None:
        self.options = options
        self.expected_images = expected_images
        self.values_per_image = values_per_image or {}
        self.radix = radix or set()  # layers whose threshold takes a RadixQuantile's two sweeps
        self.layers: dict[str, dict] = {}
        self.images = 0
        self.skipped: list[int] = []

    def add(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> None:
        self.images += len(batch)
        self.skipped += batch.skipped
        for name, acts in outputs.items():
            entry = self.layers.get(name)
            if entry is None:
                fixed = (self.options.thresholds or {}).get(name)
                if fixed is not None and len(fixed) != acts.shape[1]:
                    raise EngineError(
                        f"the thresholds given for layer {name} have {len(fixed)} values but the layer has "
                        f"{acts.shape[1]} units; use thresholds computed for this model and layer"
                    )
                entry = self.layers[name] = {
                    "num_units": int(acts.shape[1]),
                    "topk": RunningTopK(self.options.top_k),
                    "quantile": None
                    if fixed is not None
                    else RadixQuantile(self.options.quantile)
                    if name in self.radix
                    else RunningQuantile(
                        self.options.quantile, expected_images=self.expected_images,
                        values_per_image=self.values_per_image.get(name, 0),
                    ),
                }
            entry["topk"].add(acts, batch.indices)
            if entry["quantile"] is not None:
                entry["quantile"].add(acts)

    def raw_state(self) -> dict:
        """Everything ``load`` needs to go on adding batches (a resumable checkpoint)."""
        return {
            "images": self.images,
            "skipped": list(self.skipped),
            "layers": {
                name: {
                    "num_units": e["num_units"],
                    "topk": e["topk"].state_dict(),
                    "quantile": None if e["quantile"] is None else e["quantile"].state_dict(),
                }
                for name, e in self.layers.items()
            },
        }

    def load(self, raw: dict) -> None:
        """Resume from a stage file's state (its tensors are taken over, not copied)."""
        self.images = int(raw["images"])
        self.skipped = list(raw["skipped"])
        self.layers = {
            name: {
                "num_units": e["num_units"],
                "topk": RunningTopK.from_state_dict(e["topk"]),
                "quantile": None if e["quantile"] is None else quantile_from_state(e["quantile"], own=True),
            }
            for name, e in raw["layers"].items()
        }

    def state(self, dataset: ImageNames) -> dict:
        return {
            "kind": "dissect-stats",
            "top_k": self.options.top_k,
            "quantile": self.options.quantile,
            "images": self.images,
            "skipped": [dataset.image_name(i) for i in self.skipped],
            "layers": {
                name: {
                    "num_units": e["num_units"],
                    "topk": e["topk"].state_dict(),
                    "quantile": None if e["quantile"] is None else e["quantile"].state_dict(),
                }
                for name, e in self.layers.items()
            },
        }


def check_kind(state: dict, kind: str) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise EngineError(f"expected a '{kind}' state (from {kind.replace('dissect-', 'collect_')}), got something "
                          f"else")


def merge_stats(states: list[dict]) -> dict:
    """Combine ``collect_stats`` shards (disjoint image sets) into the single-pass state."""
    if not states:
        raise EngineError("merge_stats needs at least one shard state")
    for s in states:
        check_kind(s, "dissect-stats")
    first = states[0]
    layers = {}
    for name, entry in first["layers"].items():
        topk = RunningTopK.from_state_dict(entry["topk"])
        quant = None if entry["quantile"] is None else RunningQuantile.from_state_dict(entry["quantile"])
        for other in states[1:]:
            if name not in other["layers"]:
                continue  # a shard whose images were all unreadable
            o = other["layers"][name]
            topk.merge(RunningTopK.from_state_dict(o["topk"]))
            if quant is not None:
                quant.merge(RunningQuantile.from_state_dict(o["quantile"]))
        layers[name] = {
            "num_units": entry["num_units"],
            "topk": topk.state_dict(),
            "quantile": None if quant is None else quant.state_dict(),
        }
    for other in states[1:]:
        for name, entry in other["layers"].items():
            layers.setdefault(name, entry)
    return {
        **first,
        "images": sum(s["images"] for s in states),
        "skipped": [name for s in states for name in s["skipped"]],
        "layers": layers,
    }


def thresholds_of(stats: dict, options: DissectOptions) -> dict[str, np.ndarray]:
    out = {}
    for name, entry in stats["layers"].items():
        fixed = (options.thresholds or {}).get(name)
        if fixed is not None:
            out[name] = np.asarray(fixed, dtype=np.float32)
        elif entry["quantile"] is None:
            raise EngineError(f"no thresholds for layer {name}: the stats were collected with thresholds given")
        else:
            out[name] = quantile_from_state(entry["quantile"]).result().numpy().astype(np.float32)
    return out


@contextlib.contextmanager
def one_cpu_thread():
    """The counting ops are many and mid-sized: on the CPU, torch's thread team costs more
    in hand-offs than it gains (measured 3-6x slower with 2 threads on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class CountsCollector:
    def __init__(self, options: DissectOptions, vocab: Vocabulary | None, thresholds: dict[str, np.ndarray]) -> None:
        self.options = options
        self.vocab = vocab
        self.thresholds = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in thresholds.items()}
        self.counts: dict[str, IouCounts] = {}
        self.images = 0
        self.skipped: list[int] = []

    def add(self, outputs: dict[str, torch.Tensor], pixel_labels: torch.Tensor, image_labels: torch.Tensor) -> None:
        self.images += len(pixel_labels)
        if self.vocab is None:
            return
        with one_cpu_thread():
            for name, acts in outputs.items():
                counts = self.counts.get(name)
                if counts is None:
                    counts = self.counts[name] = IouCounts(acts.shape[1], self.vocab, self.options.iou_rule,
                                                           acts.device)
                counts.add(acts, self.thresholds[name], pixel_labels, image_labels)

    def merge(self, other: CountsCollector) -> None:
        """Add another collector's counts (of other images) to these: every count is a sum."""
        self.images += other.images
        self.skipped += other.skipped
        for name, counts in other.counts.items():
            mine = self.counts.get(name)
            if mine is None:
                assert self.vocab is not None  # a collector holds counts only when its dataset is labelled
                mine = self.counts[name] = IouCounts(counts.num_units, self.vocab, self.options.iou_rule, counts.device)
            mine.merge(counts)

    def raw_state(self) -> dict:
        return {"images": self.images, "skipped": list(self.skipped),
                "layers": {n: c.state_dict() for n, c in self.counts.items()}}

    def load(self, raw: dict) -> None:
        self.images = int(raw["images"])
        self.skipped = list(raw["skipped"])
        self.counts = {}
        for name, state in raw["layers"].items():
            assert self.vocab is not None  # a collector holds counts only when its dataset is labelled
            counts = IouCounts(int(state["num_units"]), self.vocab, self.options.iou_rule, self.options.device)
            counts.load_state_dict(state)
            self.counts[name] = counts

    def state(self, dataset: ImageNames) -> dict:
        return {
            "kind": "dissect-counts",
            "rule": self.options.iou_rule,
            "images": self.images,
            "skipped": [dataset.image_name(i) for i in self.skipped],
            "layers": {name: c.state_dict() for name, c in self.counts.items()},
        }


def merge_counts(states: list[dict]) -> dict:
    """Sum ``collect_counts`` shards: every count is a plain sum over images."""
    if not states:
        raise EngineError("merge_counts needs at least one shard state")
    for s in states:
        check_kind(s, "dissect-counts")
    layers: dict[str, dict] = {}
    for s in states:
        if s["rule"] != states[0]["rule"]:
            raise EngineError("counts collected under different IoU rules cannot be merged")
        for name, entry in s["layers"].items():
            if name not in layers:
                layers[name] = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in entry.items()}
                continue
            acc = layers[name]
            for key in ("truth", "intersect", "activation"):
                acc[key] = acc[key] + entry[key]
            acc["images"] += entry["images"]
    return {
        **states[0],
        "images": sum(s["images"] for s in states),
        "skipped": [n for s in states for n in s["skipped"]],
        "layers": layers,
    }


def plan_dissection(model, dataset, options: DissectOptions, batches: list[list[int]] | None = None) -> DissectPlan:
    """The spill-or-recompute plan ``dissect`` would follow (raises before any image is read)."""
    options.validate()
    batches = batches if batches is not None else size_grouped_batches(dataset, range(len(dataset)), options.batch_size)
    request = PlanRequest(
        layers=list(options.layers), quantile=options.quantile, fixed_thresholds=set(options.thresholds or {}),
        disk_budget=parse_size(options.disk_budget), memory_budget=parse_size(options.memory_budget),
        spill=options.spill, allow_float16=options.cache_dtype == "float16", threshold=options.threshold_method,
        grid=options.grid,
    )
    return make_plan(model, dataset, batches, request, device=options.device,
                     labelled=vocabulary_of(dataset) is not None)
