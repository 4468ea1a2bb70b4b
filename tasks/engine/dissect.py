"""The whole-run dissection driver: plan, sweep, counts, results, then pictures.

``dissect`` first plans (plan.py): per layer, spill its feature maps to disk when they fit
``disk_budget``, else forward the images a second time; exact thresholds by a running top-m
while the statistics fit ``memory_budget``, else by a radix quantile with one more sweep.
All layers share the first forward pass; the counting pass captures only recomputed layers.
Every stage saves a named state file per chunk (spill.py), so ``resume=True`` goes on from
the last one. The results (thresholds, top images, tallies, summary.json) are written before
the render stage draws any picture (outputs.py). The shard API lives in shards.py and is
re-exported here, with the options (options.py) and results (outputs.py), as the contract.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
from torch import nn

from .collect import (
    CountsCollector, StatsCollector, forward_batches, merge_counts, merge_stats, one_cpu_thread, plan_dissection,
    thresholds_of, vocabulary_of,
)
from .datasets import Batch, ProbeDataset, size_grouped_batches
from .dissect_alignment import AlignmentCollector, wants_alignment
from .errors import EngineError
from .iou import UnitLabel, Vocabulary
from .options import DissectOptions, Progress
from .outputs import DissectionResult, LayerResult, render_results, write_results, write_summaries
from .plan import DissectPlan, parse_size
from .runningstats import RadixQuantile, RunningTopK, quantile_from_state
from .shards import collect_counts, collect_stats, finalize
from .spill import CACHE_DIR_NAME, FeatureSpill, StageCache, model_fingerprint

__all__ = [  # the contract (README): the whole run here, the shard API re-exported from shards.py
    "DissectOptions", "LayerResult", "UnitLabel", "DissectionResult", "dissect", "plan_dissection",
    "collect_stats", "merge_stats", "collect_counts", "merge_counts", "finalize",
]

log = logging.getLogger(__name__)



def _fingerprint(model, dataset: ProbeDataset, options: DissectOptions, batches: list[list[int]]) -> dict:
    """What must match for a killed run's stage files to be reused."""
    names = hashlib.sha1("\n".join(dataset.image_name(i) for b in batches for i in b).encode()).hexdigest()
    given = {k: hashlib.sha1(np.asarray(v, np.float32).tobytes()).hexdigest()
             for k, v in (options.thresholds or {}).items()}
    return {
        "dataset": str(dataset.root), "images": names, "layers": list(options.layers), "top_k": options.top_k,
        "quantile": options.quantile, "iou_rule": options.iou_rule, "batch_size": options.batch_size,
        "thresholds": given, "model": model_fingerprint(model), "mean": list(getattr(dataset, "mean", ())),
        "std": list(getattr(dataset, "std", ())), "disk_budget": parse_size(options.disk_budget),
        "spill": options.spill, "cache_dtype": options.cache_dtype, "threshold_method": options.threshold_method,
        "memory_budget": parse_size(options.memory_budget),
        **({"grid": list(options.grid)} if options.grid else {}),
    }


class _Checkpoints:
    """Saves a stage's state every ``every`` batches (and at its end)."""

    def __init__(self, cache: StageCache, stage: str, every: int, total: int) -> None:
        self.cache, self.stage, self.every, self.total = cache, stage, every, total

    def after(self, pos: int, state: Callable[[], dict]) -> None:
        if (pos + 1) % self.every == 0 or pos + 1 == self.total:
            self.cache.save(self.stage, state() | {"next": pos + 1})

    def after_span(self, first: int, last: int, state: Callable[[], dict]) -> None:
        """After batches first..last, done side by side: saved when a chunk's end (or the stage's) falls among them."""
        if (last + 1) // self.every > first // self.every or last + 1 == self.total:
            self.cache.save(self.stage, state() | {"next": last + 1})


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
    cache = StageCache(Path(options.cache_dir or out_dir / CACHE_DIR_NAME),
                       _fingerprint(model, dataset, options, batches), resume=options.resume)
    cache.write_plan(plan)
    vocab = vocabulary_of(dataset)
    sweep_state = cache.load("sweep")
    spill = FeatureSpill(cache.root, dataset, batches, plan,
                         resume_state=None if sweep_state is None else sweep_state["spill"])
    t_plan = time.perf_counter()
    try:
        run = _Run(model, dataset, options, batches, plan, cache, spill, progress)
        stats, align_c = _sweep_stage(run, sweep_state)
        spilled_bytes = spill.disk_bytes()
        t_sweep = time.perf_counter()
        if any(lp.threshold == "radix" for lp in plan.layers):
            stats = _refine_stage(run, stats)
        t1 = time.perf_counter()
        counts: dict | None = None
        maps: dict = {}
        if vocab is not None:
            counts, maps = _count_stage(run, stats, vocab)
        elif options.render and plan.recomputed:
            maps = _top_image_maps(model, dataset, options, stats, plan.recomputed, progress)
        t2 = time.perf_counter()
        timings = {"plan": t_plan - t0, "sweep": t_sweep - t_plan, "thresholds": t1 - t_sweep, "counts": t2 - t1}
        # The results first: labels, thresholds, top images and tallies are on disk (summary.json
        # included) before any picture is drawn, so pictures never delay them.
        result = write_results(dataset, options, stats, counts, out_dir, timings)
        if align_c is not None:
            align_c.write(dataset, out_dir)
        result.plan = plan.to_json() | {"measured_spill_bytes": spilled_bytes, "resumed": cache.resumed,
                                        "lines": plan.lines()}
        for name, layer in result.layers.items():
            layer.summary["plan"] = result.plan
            layer.summary["reading"] = plan.layer(name).reading
        result.timings["results"] = time.perf_counter() - t0
        write_summaries(out_dir, result)
        if options.render:
            # The render stage needs only the final thresholds and top images, and those images'
            # maps: read from the spill, or kept by the counting pass for recomputed layers.
            def get_maps(name: str, indices: np.ndarray):
                if name in plan.spilled:
                    return spill.get_map(name, indices)
                return lambda u, r, index: maps[(name, u, r)]

            render_results(result, dataset, options, stats, out_dir, get_maps, progress)
    finally:
        spill.close()
    cache.remove()  # finished: the outputs are written, the stage files are no longer needed
    result.timings["total"] = time.perf_counter() - t0
    write_summaries(out_dir, result)
    return result


@dataclass(frozen=True)
class _Run:
    """What every stage of one whole run reads: the model and data, the plan, and where state goes."""

    model: nn.Module
    dataset: ProbeDataset
    options: DissectOptions
    batches: list[list[int]]
    plan: DissectPlan
    cache: StageCache
    spill: FeatureSpill
    progress: Progress


def _sweep_stage(run: _Run, state: dict | None) -> tuple[dict, AlignmentCollector | None]:
    """Stage 1: top images and thresholds of every layer in one forward pass; spill the chosen layers."""
    model, dataset, options, batches = run.model, run.dataset, run.options, run.batches
    plan, cache, spill, progress = run.plan, run.cache, run.spill, run.progress
    stats_c = StatsCollector(
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
        return {"stats": stats_c.raw_state(), "align": None if align_c is None else align_c.parts,
                "spill": spill.state()}

    if start < len(batches):
        for pos, batch, outputs in forward_batches(model, dataset, options, batches, options.layers, "sweep", progress,
                                                   start):
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


def _again(run: _Run, layers: list[str], stage: str, start: int):
    """A later pass over the planned batches: (pos, batch or None, outputs of ``layers``).

    Spilled layers are read back; the others are forwarded again, capturing only them. With
    nothing to forward the batch is None (labels then come from the spill).
    """
    model, dataset, options, batches = run.model, run.dataset, run.options, run.batches
    spill, progress, spilled = run.spill, run.progress, set(run.plan.spilled)
    device = torch.device(options.device)
    forward = [name for name in layers if name not in spilled]
    stored = [name for name in layers if name in spilled]
    source: Iterator[tuple[int, Batch | None, dict[str, torch.Tensor] | None]]
    if forward:
        source = forward_batches(model, dataset, options, batches, forward, stage, progress, start)
    else:
        source = ((pos, None, {}) for pos in range(start, len(batches)))
    for pos, batch, outputs in source:
        if pos in spill.written:
            if batch is None and progress is not None:
                progress(stage, (pos + 1) / len(batches))
            yield pos, batch, (outputs or {}) | spill.read(pos, stored, device)
        else:
            yield pos, batch, None


def _refine_stage(run: _Run, stats: dict) -> dict:
    """Stage 1b, only for layers whose exact running quantile would not fit the memory budget:
    the second sweep of their RadixQuantile (see runningstats.py)."""
    options, batches, plan, cache = run.options, run.batches, run.plan, run.cache
    layers = [lp.layer for lp in plan.layers if lp.threshold == "radix"]
    # Only radix layers come here: their state is a RadixQuantile's.
    quantiles = {name: cast(RadixQuantile, quantile_from_state(stats["layers"][name]["quantile"])) for name in layers}
    state = cache.load("refine")
    start = 0
    if state is not None:
        start = int(state["next"])
        quantiles = {name: cast(RadixQuantile, quantile_from_state(q)) for name, q in state["quantiles"].items()}
    for q in quantiles.values():
        if not q.refining:
            q.start_refine()
    checkpoints = _Checkpoints(cache, "refine", options.checkpoint_every, len(batches))
    for pos, _, outputs in _again(run, layers, "thresholds", start):
        if outputs is not None:
            for name in layers:
                quantiles[name].add(outputs[name])
        checkpoints.after(pos, lambda: {"quantiles": {n: q.state_dict() for n, q in quantiles.items()}})
    for name, q in quantiles.items():
        stats["layers"][name]["quantile"] = q.state_dict()
    return stats


def _count_stage(run: _Run, stats: dict, vocab: Vocabulary) -> tuple[dict, dict]:
    """Stage 2: IoU counts; spilled layers read back, recomputed ones forwarded again (which
    also captures their top images' maps for the pictures)."""
    dataset, options, batches = run.dataset, run.options, run.batches
    plan, cache, spill, progress = run.plan, run.cache, run.spill, run.progress
    counts_c = CountsCollector(options, vocab, thresholds_of(stats, options))
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
    threads = _count_threads(options, plan)
    if threads > 1:
        _count_spilled_in_threads(counts_c, spill, layers, len(batches), start, threads, checkpoints, progress)
        return counts_c.state(dataset), maps
    for pos, batch, outputs in _again(run, layers, "counts", start):
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


def _count_threads(options: DissectOptions, plan: DissectPlan) -> int:
    """Threads for the counting pass: with every layer spilled there is no forward pass left to run, so
    on the CPU the batches are counted side by side, one per core torch may use (the counting ops are
    many and mid-sized, so each thread runs them single-threaded; see collect.one_cpu_thread). With a
    layer to recompute, the forward pass keeps the cores busy and the counts stay beside it."""
    if plan.recomputed or torch.device(options.device).type != "cpu":
        return 1
    return max(1, min(options.count_threads or torch.get_num_threads(), 8))


def _count_spilled_in_threads(counts_c: CountsCollector, spill: FeatureSpill, layers: list[str], total: int, start: int,
                              threads: int, checkpoints: _Checkpoints, progress: Progress) -> None:
    """The counting pass over a spill with ``threads`` collectors, each counting every ``threads``-th batch
    of a round; reads stay in this thread, in batch order. The collectors are summed into ``counts_c``
    (the counts are integer sums: the result is exactly the one-thread result, whatever the order), and a
    checkpoint after a round holds every batch before it, as the one-thread pass's does."""
    from concurrent.futures import ThreadPoolExecutor

    helpers = [CountsCollector(counts_c.options, counts_c.vocab, {}) for _ in range(threads)]
    for helper in helpers:
        helper.thresholds = counts_c.thresholds

    def summed() -> CountsCollector:
        total_c = CountsCollector(counts_c.options, counts_c.vocab, {})
        for collector in (counts_c, *helpers):
            total_c.merge(collector)
        return total_c

    positions = list(range(start, total))
    # torch's thread count is process-wide: set once here, not per thread (their save/restore would race).
    with one_cpu_thread(), ThreadPoolExecutor(threads, thread_name_prefix="counts") as pool:
        for first in range(0, len(positions), threads):
            running = []
            for helper, pos in zip(helpers, positions[first:first + threads]):
                if pos not in spill.written:  # a batch of unreadable images only
                    continue
                outputs = spill.read(pos, layers, torch.device("cpu"))
                pix, img = spill.read_labels(pos)
                running.append(pool.submit(helper.add, outputs, pix, img))
            for future in running:
                future.result()
            last = positions[min(first + threads, len(positions)) - 1]
            if progress is not None:
                progress("counts", (last + 1) / total)
            checkpoints.after_span(positions[first], last, lambda: {"counts": summed().raw_state(), "maps": {}})
    final = summed()
    counts_c.images, counts_c.skipped, counts_c.counts = final.images, final.skipped, final.counts


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


def _top_image_maps(model, dataset, options: DissectOptions, stats: dict, layers: list[str],
                    progress: Progress) -> dict:
    """Unlabelled data, recomputed layers: forward only the top images again for the pictures."""
    wanted = _wanted_maps(stats, layers, options.render_k or options.top_k)
    maps: dict = {}
    batches = size_grouped_batches(dataset, sorted(wanted), options.batch_size)
    for _, batch, outputs in forward_batches(model, dataset, options, batches, layers, "maps", progress):
        if outputs is not None:
            _grab_maps(batch, outputs, wanted, maps)
    return maps
