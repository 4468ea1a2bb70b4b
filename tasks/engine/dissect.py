"""The dissection driver: a planned sweep for top images and thresholds, IoU counts, outputs.

``dissect`` first plans (plan.py): per layer, spill its feature maps to disk when they fit
``disk_budget``, else forward the images a second time; exact thresholds by a running top-m
while the statistics fit ``memory_budget``, else by a radix quantile with one more sweep.
All layers share the first forward pass; the counting pass captures only recomputed layers.
Every stage saves a named state file per chunk (spill.py), so ``resume=True`` goes on from
the last one. The shard API (``collect_stats`` -> ``merge_stats`` -> ``collect_counts`` ->
``merge_counts`` -> ``finalize``) gives the same numbers when the platform splits the images
over several workers.

Files under ``out_dir/<layer>/`` number units from 1 (tally.csv, topk.csv, exemplar
folders); the Python objects number them from 0.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .capture import LayerCapture
from .datasets import Batch, ProbeDataset, ProbeLoader, make_loader, size_grouped_batches
from .dissect_alignment import AlignmentCollector, wants_alignment
from .errors import EngineError
from .iou import INTERPRETABLE_IOU, IOU_RULES, IouCounts, IouTable, UnitLabel, Vocabulary, write_tally
from .plan import SPILL_MODES, DissectPlan, make_plan, parse_size
from .render import HIGHLIGHTS, render_layer
from .runningstats import RadixQuantile, RunningQuantile, RunningTopK, quantile_from_state
from .spill import CACHE_DIR_NAME, FeatureSpill, StageCache, model_fingerprint

__all__ = [
    "DissectOptions", "LayerResult", "UnitLabel", "DissectionResult", "dissect",
    "collect_stats", "merge_stats", "collect_counts", "merge_counts", "finalize",
]

Progress = Callable[[str, float], None] | None
log = logging.getLogger(__name__)


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
    threshold_method: str = "auto"  # "exact" (running top-m), "radix" (bounded, one more sweep)
    channels_last: bool = False  # NHWC convolutions (faster on some CPUs and on CUDA)

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
        for name in ("disk_budget", "memory_budget"):
            if parse_size(getattr(self, name)) < 0:
                raise EngineError(f"{name} cannot be negative")


@dataclass
class LayerResult:
    name: str
    num_units: int
    thresholds: np.ndarray  # float [U]
    topk_indices: np.ndarray  # int [U, k] dataset indices, rank order
    topk_scores: np.ndarray  # float [U, k]
    iou: np.ndarray | None  # float [U, n_concepts] (None for unlabelled data)
    labels: list[UnitLabel]  # per unit (0-based here; tally.csv writes 1-based)
    exemplars: dict[int, list[str]] = field(default_factory=dict)
    plain: dict[int, list[str]] = field(default_factory=dict)
    strips: dict[int, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


@dataclass
class DissectionResult:
    layers: dict[str, LayerResult]
    timings: dict[str, float]
    skipped_images: list[str]
    plan: dict | None = None  # whole runs: the plan (DissectPlan.to_json) and the measured spill


# -- sweeping the dataset ----------------------------------------------------------------


def _vocabulary(dataset: ProbeDataset) -> Vocabulary | None:
    if not dataset.categories or not dataset.concepts:
        return None  # an unlabelled dataset: top images and thresholds only
    return Vocabulary.from_concepts(dataset.concepts, dataset.categories)


def _prepare(model: nn.Module, options: DissectOptions) -> torch.device:
    device = torch.device(options.device)
    model.to(device).eval()
    if options.channels_last:
        model.to(memory_format=torch.channels_last)
    return device


def _forward_batches(
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
    with LayerCapture(model, layers) as capture, torch.inference_mode():
        bar = tqdm(loader.every_batch(), desc=stage, unit="batch", total=len(loader), disable=not options.progress_bar, leave=False)
        for pos, batch in enumerate(bar, start=start):
            outputs = None
            if len(batch):
                images = batch.images.to(device, non_blocking=True).contiguous(memory_format=memory_format)
                outputs = {k: v.contiguous() for k, v in capture.run(images).items()}
            yield pos, batch, outputs
            done += len(batches[pos])
            if progress is not None:
                progress(stage, min(1.0, done / total))


def _sweep(
    model: nn.Module, dataset: ProbeDataset, options: DissectOptions, indices, stage: str, progress: Progress
) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
    """Forward every batch once, yielding the batch and its captured layer outputs."""
    chosen = range(len(dataset)) if indices is None else indices
    batches = size_grouped_batches(dataset, chosen, options.batch_size)
    for _, batch, outputs in _forward_batches(model, dataset, options, batches, options.layers, stage, progress):
        if outputs is not None:
            yield batch, outputs


class _StatsCollector:
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
        self.images = int(raw["images"])
        self.skipped = list(raw["skipped"])
        self.layers = {
            name: {
                "num_units": e["num_units"],
                "topk": RunningTopK.from_state_dict(e["topk"]),
                "quantile": None if e["quantile"] is None else quantile_from_state(e["quantile"]),
            }
            for name, e in raw["layers"].items()
        }

    def state(self, dataset: ProbeDataset) -> dict:
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


def _check_kind(state: dict, kind: str) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise EngineError(f"expected a '{kind}' state (from {kind.replace('dissect-', 'collect_')}), got something else")


def merge_stats(states: list[dict]) -> dict:
    """Combine ``collect_stats`` shards (disjoint image sets) into the single-pass state."""
    if not states:
        raise EngineError("merge_stats needs at least one shard state")
    for s in states:
        _check_kind(s, "dissect-stats")
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


def _thresholds(stats: dict, options: DissectOptions) -> dict[str, np.ndarray]:
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
def _one_cpu_thread():
    """The counting ops are many and mid-sized: on the CPU, torch's thread team costs more
    in hand-offs than it gains (measured 3-6x slower with 2 threads on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _CountsCollector:
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
        with _one_cpu_thread():
            for name, acts in outputs.items():
                counts = self.counts.get(name)
                if counts is None:
                    counts = self.counts[name] = IouCounts(acts.shape[1], self.vocab, self.options.iou_rule, acts.device)
                counts.add(acts, self.thresholds[name], pixel_labels, image_labels)

    def raw_state(self) -> dict:
        return {"images": self.images, "skipped": list(self.skipped), "layers": {n: c.state_dict() for n, c in self.counts.items()}}

    def load(self, raw: dict) -> None:
        self.images = int(raw["images"])
        self.skipped = list(raw["skipped"])
        self.counts = {}
        for name, state in raw["layers"].items():
            counts = IouCounts(int(state["num_units"]), self.vocab, self.options.iou_rule, self.options.device)
            counts.load_state_dict(state)
            self.counts[name] = counts

    def state(self, dataset: ProbeDataset) -> dict:
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
        _check_kind(s, "dissect-counts")
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


# -- the shard API -------------------------------------------------------------------------


def collect_stats(model, dataset, options: DissectOptions, *, indices=None, progress: Progress = None) -> dict:
    """Top-k and threshold statistics of the images in ``indices`` (default: all)."""
    options.validate()
    # Sized for the whole dataset so that shards merge into the exact threshold.
    collector = _StatsCollector(options, expected_images=len(dataset))
    for batch, outputs in _sweep(model, dataset, options, indices, "stats", progress):
        collector.add(batch, outputs)
    return collector.state(dataset)


def collect_counts(model, dataset, options: DissectOptions, stats: dict, *, indices=None, progress: Progress = None) -> dict:
    """IoU counts of the images in ``indices`` under the thresholds of merged ``stats``."""
    options.validate()
    _check_kind(stats, "dissect-stats")
    collector = _CountsCollector(options, _vocabulary(dataset), _thresholds(stats, options))
    for batch, outputs in _sweep(model, dataset, options, indices, "counts", progress):
        collector.skipped += batch.skipped
        collector.add(outputs, batch.pixel_labels, batch.image_labels)
    return collector.state(dataset)


def _forward_maps(model, dataset, options: DissectOptions, stats: dict, render_k: int, progress: Progress):
    """get_map for rendering after a sharded run: forward only the top images again."""
    wanted: dict[int, list[tuple[str, int, int]]] = {}
    for name, entry in stats["layers"].items():
        indices = RunningTopK.from_state_dict(entry["topk"]).result()[1].numpy()
        for u in range(indices.shape[0]):
            for r in range(min(render_k, indices.shape[1])):
                wanted.setdefault(int(indices[u, r]), []).append((name, u, r))
    maps: dict[tuple[str, int, int], torch.Tensor] = {}
    for batch, outputs in _sweep(model, dataset, options, sorted(wanted), "maps", progress):
        for row, index in enumerate(batch.indices.tolist()):
            for name, u, r in wanted[index]:
                maps[(name, u, r)] = outputs[name][row, u].cpu().clone()
    return lambda name, indices: (lambda u, r, index: maps[(name, u, r)])


def finalize(model, dataset, options: DissectOptions, stats: dict, counts: dict | None, out_dir, *, progress: Progress = None) -> DissectionResult:
    """Write every output from merged stats and counts (forwards only the top images again)."""
    options.validate()
    _check_kind(stats, "dissect-stats")
    started = time.perf_counter()
    render_k = options.render_k or options.top_k
    get_maps = _forward_maps(model, dataset, options, stats, render_k, progress) if options.render else None
    timings = {"top_image_maps": time.perf_counter() - started}
    result = _write_outputs(dataset, options, stats, counts, Path(out_dir), get_maps, progress, timings)
    result.timings["total"] = time.perf_counter() - started
    _write_summaries(Path(out_dir), result)
    return result


# -- the whole run ---------------------------------------------------------------------------


def _fingerprint(model, dataset: ProbeDataset, options: DissectOptions, batches: list[list[int]]) -> dict:
    """What must match for a killed run's stage files to be reused."""
    names = hashlib.sha1("\n".join(dataset.image_name(i) for b in batches for i in b).encode()).hexdigest()
    given = {k: hashlib.sha1(np.asarray(v, np.float32).tobytes()).hexdigest() for k, v in (options.thresholds or {}).items()}
    return {
        "dataset": str(dataset.root), "images": names, "layers": list(options.layers), "top_k": options.top_k,
        "quantile": options.quantile, "iou_rule": options.iou_rule, "batch_size": options.batch_size,
        "thresholds": given, "model": model_fingerprint(model), "mean": list(getattr(dataset, "mean", ())),
        "std": list(getattr(dataset, "std", ())), "disk_budget": parse_size(options.disk_budget),
        "spill": options.spill, "cache_dtype": options.cache_dtype, "threshold_method": options.threshold_method,
        "memory_budget": parse_size(options.memory_budget),
    }


def plan_dissection(model, dataset, options: DissectOptions, batches: list[list[int]] | None = None) -> DissectPlan:
    """The spill-or-recompute plan ``dissect`` would follow (raises before any image is read)."""
    options.validate()
    batches = batches if batches is not None else size_grouped_batches(dataset, range(len(dataset)), options.batch_size)
    return make_plan(
        model, dataset, batches, layers=list(options.layers), quantile=options.quantile,
        fixed_thresholds=set(options.thresholds or {}), disk_budget=parse_size(options.disk_budget),
        memory_budget=parse_size(options.memory_budget), spill=options.spill,
        allow_float16=options.cache_dtype == "float16", device=options.device, labelled=_vocabulary(dataset) is not None,
        threshold=options.threshold_method,
    )


class _Checkpoints:
    """Saves a stage's state every ``every`` batches (and at its end)."""

    def __init__(self, cache: StageCache, stage: str, every: int, total: int) -> None:
        self.cache, self.stage, self.every, self.total = cache, stage, every, total

    def after(self, pos: int, state: Callable[[], dict]) -> None:
        if (pos + 1) % self.every == 0 or pos + 1 == self.total:
            self.cache.save(self.stage, state() | {"next": pos + 1})


def dissect(model, dataset, options: DissectOptions, out_dir, *, progress: Progress = None) -> DissectionResult:
    """Dissect ``options.layers`` of ``model`` on ``dataset``; write outputs under ``out_dir``.

    The planner first decides per layer whether its maps are spilled to disk (within
    ``disk_budget``) or recomputed by a second forward pass. The sweep then updates top images
    and thresholds of every layer in one forward pass (spilling the chosen layers); the IoU
    counts read the spill or forward the images again, capturing only the recomputed layers.
    Each stage saves its state every ``checkpoint_every`` batches under ``cache_dir``, so with
    ``resume=True`` a killed run goes on from its last finished chunk.
    """
    options.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    batches = size_grouped_batches(dataset, range(len(dataset)), options.batch_size)
    plan = plan_dissection(model, dataset, options, batches)
    for line in plan.lines():
        log.info("%s", line)  # a worker's log shows the plan even without a terminal
    if options.progress_bar:
        print("\n".join(plan.lines()), file=sys.stderr, flush=True)
    cache = StageCache(Path(options.cache_dir or out_dir / CACHE_DIR_NAME), _fingerprint(model, dataset, options, batches), resume=options.resume)
    cache.write_plan(plan)
    vocab = _vocabulary(dataset)
    sweep_state = cache.load("sweep")
    spill = FeatureSpill(cache.root, dataset, batches, plan, resume_state=None if sweep_state is None else sweep_state["spill"])
    t_plan = time.perf_counter()
    background = ThreadPoolExecutor(max_workers=1)
    pictures = None
    threads = torch.get_num_threads()  # the renderer and the counter both pin it to 1 for a while
    try:
        stats, align_c = _sweep_stage(model, dataset, options, batches, plan, cache, spill, sweep_state, progress)
        spilled_bytes = spill.disk_bytes()
        if any(lp.threshold == "radix" for lp in plan.layers):
            stats = _refine_stage(model, dataset, options, batches, plan, cache, spill, stats, progress)
        t1 = time.perf_counter()
        if options.render and plan.spilled and not plan.recomputed:
            # Off the critical path: the spilled layers' pictures need only the thresholds and
            # top images, both final now, so they are drawn while the counts run. (Not beside a
            # second forward pass: the renderer runs torch on one thread, process-wide.)
            pictures = background.submit(_render_spilled, dataset, options, stats, plan.spilled, spill, out_dir)
        counts, maps = None, {}
        if vocab is not None:
            counts, maps = _count_stage(model, dataset, options, batches, plan, cache, spill, stats, vocab, progress)
        elif options.render and plan.recomputed:
            maps = _top_image_maps(model, dataset, options, stats, plan.recomputed, progress)
        t2 = time.perf_counter()
        rendered, render_s = pictures.result() if pictures is not None else ({}, 0.0)
        torch.set_num_threads(threads)
        t3 = time.perf_counter()

        def get_maps(name: str, indices: np.ndarray):
            if name in plan.spilled:
                return spill.get_map(name, indices)
            return lambda u, r, index: maps[(name, u, r)]

        timings = {"plan": t_plan - t0, "sweep": t1 - t_plan, "counts": t2 - t1, "render_wait": t3 - t2, "render": render_s}
        result = _write_outputs(dataset, options, stats, counts, out_dir, get_maps, progress, timings, rendered)
        if align_c is not None:
            align_c.write(dataset, out_dir)
    finally:
        if pictures is not None:
            pictures.cancel()
            with contextlib.suppress(Exception):
                pictures.result()  # never close the spill under a running renderer
        background.shutdown()
        spill.close()
        torch.set_num_threads(threads)
    cache.remove()  # finished: the outputs are written, the stage files are no longer needed
    result.timings["total"] = time.perf_counter() - t0
    result.plan = plan.to_json() | {"measured_spill_bytes": spilled_bytes, "resumed": cache.resumed, "lines": plan.lines()}
    for layer in result.layers.values():
        layer.summary["plan"] = result.plan
    _write_summaries(out_dir, result)
    return result


def _render_spilled(dataset, options: DissectOptions, stats: dict, layers: list[str], spill: FeatureSpill, out_dir: Path):
    started = time.perf_counter()
    done = {name: _render(dataset, options, stats, name, spill.get_map, out_dir) for name in layers}
    return done, time.perf_counter() - started


def _sweep_stage(model, dataset, options, batches, plan: DissectPlan, cache: StageCache, spill: FeatureSpill, state, progress):
    """Stage 1: top images and thresholds of every layer in one forward pass; spill the chosen layers."""
    stats_c = _StatsCollector(
        options, sum(len(b) for b in batches), {lp.layer: lp.values_per_image for lp in plan.layers},
        {lp.layer for lp in plan.layers if lp.threshold == "radix"},
    )
    align_c = AlignmentCollector() if wants_alignment(dataset) else None
    start = 0
    if state is not None:
        start = int(state["next"])
        stats_c.load(state["stats"])
        if align_c is not None:
            align_c.parts = state["align"]
        dataset.record_skipped(stats_c.skipped)
    checkpoints = _Checkpoints(cache, "sweep", options.checkpoint_every, len(batches))

    def snapshot() -> dict:
        return {"stats": stats_c.raw_state(), "align": None if align_c is None else align_c.parts, "spill": spill.state()}

    if start < len(batches):
        for pos, batch, outputs in _forward_batches(model, dataset, options, batches, options.layers, "sweep", progress, start):
            if outputs is None:
                stats_c.skipped += batch.skipped  # a batch of unreadable images only
            else:
                stats_c.add(batch, outputs)
                spill.add(pos, batch, outputs)
                if align_c is not None:
                    align_c.add(batch, outputs)
            checkpoints.after(pos, snapshot)
    stats = stats_c.state(dataset)
    if not stats["layers"]:
        raise EngineError(f"no image of {dataset.root} could be read; nothing to dissect")
    return stats, align_c


def _again(model, dataset, options, batches, spill: FeatureSpill, layers: list[str], spilled: set[str], stage: str, progress, start: int):
    """A later pass over the planned batches: (pos, batch or None, outputs of ``layers``).

    Spilled layers are read back; the others are forwarded again, capturing only them. With
    nothing to forward the batch is None (labels then come from the spill).
    """
    device = torch.device(options.device)
    forward = [name for name in layers if name not in spilled]
    stored = [name for name in layers if name in spilled]
    if forward:
        source = _forward_batches(model, dataset, options, batches, forward, stage, progress, start)
    else:
        source = ((pos, None, {}) for pos in range(start, len(batches)))
    for pos, batch, outputs in source:
        if pos in spill.written:
            if batch is None and progress is not None:
                progress(stage, (pos + 1) / len(batches))
            yield pos, batch, (outputs or {}) | spill.read(pos, stored, device)
        else:
            yield pos, batch, None


def _refine_stage(model, dataset, options, batches, plan: DissectPlan, cache: StageCache, spill: FeatureSpill, stats: dict, progress) -> dict:
    """Stage 1b, only for layers whose exact running quantile would not fit the memory budget:
    the second sweep of their RadixQuantile (see runningstats.py)."""
    layers = [lp.layer for lp in plan.layers if lp.threshold == "radix"]
    quantiles = {name: quantile_from_state(stats["layers"][name]["quantile"]) for name in layers}
    state = cache.load("refine")
    start = 0
    if state is not None:
        start = int(state["next"])
        quantiles = {name: quantile_from_state(q) for name, q in state["quantiles"].items()}
    for q in quantiles.values():
        if not q.refining:
            q.start_refine()
    checkpoints = _Checkpoints(cache, "refine", options.checkpoint_every, len(batches))
    for pos, _, outputs in _again(model, dataset, options, batches, spill, layers, set(plan.spilled), "thresholds", progress, start):
        if outputs is not None:
            for name in layers:
                quantiles[name].add(outputs[name])
        checkpoints.after(pos, lambda: {"quantiles": {n: q.state_dict() for n, q in quantiles.items()}})
    for name, q in quantiles.items():
        stats["layers"][name]["quantile"] = q.state_dict()
    return stats


def _count_stage(model, dataset, options, batches, plan: DissectPlan, cache: StageCache, spill: FeatureSpill, stats, vocab, progress):
    """Stage 2: IoU counts; spilled layers read back, recomputed ones forwarded again (which
    also captures their top images' maps for the pictures)."""
    counts_c = _CountsCollector(options, vocab, _thresholds(stats, options))
    wanted = _wanted_maps(stats, plan.recomputed, options.render_k or options.top_k) if options.render else {}
    maps: dict[tuple[str, int, int], torch.Tensor] = {}
    state = cache.load("counts")
    start = 0
    if state is not None:
        start = int(state["next"])
        counts_c.load(state["counts"])
        maps = state["maps"]
    checkpoints = _Checkpoints(cache, "counts", options.checkpoint_every, len(batches))

    def snapshot() -> dict:
        return {"counts": counts_c.raw_state(), "maps": maps}

    layers = [lp.layer for lp in plan.layers]
    for pos, batch, outputs in _again(model, dataset, options, batches, spill, layers, set(plan.spilled), "counts", progress, start):
        if outputs is not None:
            if batch is None:  # everything spilled: the labels come from disk too
                pix, img = spill.read_labels(pos)
            else:
                pix, img = batch.pixel_labels, batch.image_labels
            counts_c.add(outputs, pix, img)
            if batch is not None and wanted:
                _grab_maps(batch, outputs, wanted, maps)
        checkpoints.after(pos, snapshot)
    return counts_c.state(dataset), maps


def _wanted_maps(stats: dict, layers: list[str], render_k: int) -> dict[int, list[tuple[str, int, int]]]:
    wanted: dict[int, list[tuple[str, int, int]]] = {}
    for name in layers:
        indices = RunningTopK.from_state_dict(stats["layers"][name]["topk"]).result()[1].numpy()
        for u in range(indices.shape[0]):
            for r in range(min(render_k, indices.shape[1])):
                wanted.setdefault(int(indices[u, r]), []).append((name, u, r))
    return wanted


def _grab_maps(batch: Batch, outputs: dict[str, torch.Tensor], wanted, maps: dict) -> None:
    for row, index in enumerate(batch.indices.tolist()):
        for name, u, r in wanted.get(index, ()):
            maps[(name, u, r)] = outputs[name][row, u].cpu().clone()


def _top_image_maps(model, dataset, options: DissectOptions, stats: dict, layers: list[str], progress: Progress) -> dict:
    """Unlabelled data, recomputed layers: forward only the top images again for the pictures."""
    wanted = _wanted_maps(stats, layers, options.render_k or options.top_k)
    maps: dict = {}
    batches = size_grouped_batches(dataset, sorted(wanted), options.batch_size)
    for _, batch, outputs in _forward_batches(model, dataset, options, batches, layers, "maps", progress):
        if outputs is not None:
            _grab_maps(batch, outputs, wanted, maps)
    return maps


# -- outputs ---------------------------------------------------------------------------------


def _summary_of(name: str, labels: list[UnitLabel] | None, vocab: Vocabulary | None, num_units: int, stats: dict, options: DissectOptions) -> dict:
    summary: dict = {
        "layer": name,
        "units": num_units,
        "images": stats["images"],
        "skipped_images": len(stats["skipped"]),
        "quantile": options.quantile,
        "thresholds_from": "given" if (options.thresholds or {}).get(name) is not None else "quantile",
        "top_k": options.top_k,
        "unit_numbering": "files (tally.csv, topk.csv, exemplars) number units from 1; ranks from 0",
    }
    if labels is None or vocab is None:
        summary.update(labelled=False, interpretable_units=None, unique_concepts=None)
        return summary
    detectors = [lab for lab in labels if lab.score > INTERPRETABLE_IOU]
    concepts = {(lab.category, lab.label) for lab in detectors}
    summary.update(
        labelled=True,
        iou_rule=options.iou_rule,
        interpretable_threshold=INTERPRETABLE_IOU,
        interpretable_units=len(detectors),
        unique_concepts=len(concepts),
        # Bar chart of NetDissect: unique detectors (concepts) per category.
        unique_detectors_per_category={c: sum(1 for cat, _ in concepts if cat == c) for c in vocab.categories},
        units_per_category={c: sum(1 for lab in detectors if lab.category == c) for c in vocab.categories},
        line=f"{len(detectors)}/{num_units} units covering {len(concepts)} concepts with IoU >= {INTERPRETABLE_IOU}",
    )
    return summary


def _write_topk(path: Path, dataset: ProbeDataset, indices: np.ndarray, scores: np.ndarray) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["unit", "rank", "image", "score", "image_name"])  # unit 1-based, rank 0-based
        for u in range(indices.shape[0]):
            for r in range(indices.shape[1]):
                index = int(indices[u, r])
                writer.writerow([u + 1, r, index, repr(float(scores[u, r])), dataset.image_name(index)])


def _render(dataset, options: DissectOptions, stats: dict, name: str, get_maps, out_dir: Path, progress=None):
    """Exemplar pictures of one layer (the thresholds and top images are final after the sweep)."""
    k = options.render_k or options.top_k
    indices = RunningTopK.from_state_dict(stats["layers"][name]["topk"]).result()[1].numpy()
    return render_layer(
        dataset.load_rgb, get_maps(name, indices[:, :k]), indices, _thresholds(stats, options)[name], out_dir, name,
        render_k=k, style=options.highlight, fmt=options.image_format, progress=progress,
    )


def _write_outputs(dataset, options, stats, counts, out_dir: Path, get_maps, progress: Progress, timings: dict, rendered: dict | None = None) -> DissectionResult:
    """Files and results of every layer; ``rendered`` holds layers already pictured elsewhere."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rendered = rendered or {}
    t0 = time.perf_counter()
    vocab = _vocabulary(dataset)
    thresholds = _thresholds(stats, options)
    results: dict[str, LayerResult] = {}
    render_time = 0.0
    layer_names = [n for n in options.layers if n in stats["layers"]]
    for li, name in enumerate(layer_names):
        entry = stats["layers"][name]
        layer_dir = out_dir / name
        layer_dir.mkdir(parents=True, exist_ok=True)
        scores_t, indices_t = RunningTopK.from_state_dict(entry["topk"]).result()
        scores, indices = scores_t.numpy(), indices_t.numpy()
        np.save(layer_dir / "thresholds.npy", thresholds[name])
        _write_topk(layer_dir / "topk.csv", dataset, indices, scores)
        iou, labels = None, None
        if vocab is not None and counts is not None and name in counts["layers"]:
            ic = IouCounts(entry["num_units"], vocab, options.iou_rule)
            ic.load_state_dict(counts["layers"][name])
            table = IouTable.from_counts(ic)
            labels = write_tally(layer_dir / "tally.csv", table)
            iou = table.iou
        result = LayerResult(
            name, entry["num_units"], thresholds[name], indices, scores, iou,
            labels if labels is not None else [],
        )
        if name in rendered:
            done = rendered[name]
            result.exemplars, result.plain, result.strips = done.exemplars, done.plain, done.strips
            if progress is not None:
                progress("render", (li + 1) / len(layer_names))
        elif options.render and get_maps is not None:
            r0 = time.perf_counter()
            done = _render(dataset, options, stats, name, get_maps, out_dir,
                           None if progress is None else (lambda f, li=li: progress("render", (li + f) / len(layer_names))))
            render_time += time.perf_counter() - r0
            result.exemplars, result.plain, result.strips = done.exemplars, done.plain, done.strips
        result.summary = _summary_of(name, labels, vocab, entry["num_units"], stats, options)
        results[name] = result
    timings["render"] = timings.get("render", 0.0) + render_time
    timings["outputs"] = time.perf_counter() - t0
    return DissectionResult(results, timings, list(stats["skipped"]))


def _write_summaries(out_dir: Path, result: DissectionResult) -> None:
    for layer in result.layers.values():
        layer.summary["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
        layer.summary["skipped_image_names"] = result.skipped_images
        (out_dir / layer.name / "summary.json").write_text(json.dumps(layer.summary, indent=2))
