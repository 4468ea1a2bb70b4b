"""The shard API: the platform splits the images over several workers and merges exactly.

``collect_stats`` (per shard) -> ``merge_stats`` -> ``collect_counts`` (per shard, under the
merged thresholds) -> ``merge_counts`` -> ``finalize`` (writes the outputs; forwards only the
top images again for the pictures). Each shard call is one pass over its own images and holds
only running statistics in memory (no spill, nothing on disk), so the disk budget and the
planner's spill-or-recompute choice do not apply; its memory check does (``shard_plan``).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from .collect import CountsCollector, StatsCollector, check_kind, plan_dissection, sweep, thresholds_of, vocabulary_of
from .errors import EngineError
from .options import DissectOptions, Progress
from .outputs import DissectionResult, write_outputs, write_summaries
from .plan import DissectPlan
from .runningstats import RunningTopK


def shard_plan(model, dataset, options: DissectOptions) -> DissectPlan:
    """The planner's view of a sharded job, checked before a shard reads any image.

    Shards keep exact running thresholds (they merge exactly; a radix threshold would need
    every shard's first sweep merged before any second sweep) and spill nothing, so only the
    memory budget applies. EngineError when the running statistics would not fit it.
    """
    if options.threshold_method == "radix":
        raise EngineError("a sharded job keeps exact (mergeable) thresholds; run it whole for radix thresholds")
    try:
        return plan_dissection(model, dataset, replace(options, spill="never", threshold_method="exact"))
    except EngineError as exc:
        raise EngineError(f"{exc}; or run the job whole (one shard), where radix thresholds bound memory") from None


def collect_stats(model, dataset, options: DissectOptions, *, indices=None, progress: Progress = None) -> dict:
    """Top-k and threshold statistics of the images in ``indices`` (default: all)."""
    options.validate()
    plan = shard_plan(model, dataset, options)
    # Sized for the whole dataset so that shards merge into the exact threshold.
    collector = StatsCollector(options, expected_images=plan.images,
                               values_per_image={lp.layer: lp.values_per_image for lp in plan.layers})
    for batch, outputs in sweep(model, dataset, options, indices, "stats", progress):
        collector.add(batch, outputs)
    return collector.state(dataset)


def collect_counts(model, dataset, options: DissectOptions, stats: dict, *, indices=None,
                   progress: Progress = None) -> dict:
    """IoU counts of the images in ``indices`` under the thresholds of merged ``stats``."""
    options.validate()
    check_kind(stats, "dissect-stats")
    collector = CountsCollector(options, vocabulary_of(dataset), thresholds_of(stats, options))
    for batch, outputs in sweep(model, dataset, options, indices, "counts", progress):
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
    for batch, outputs in sweep(model, dataset, options, sorted(wanted), "maps", progress):
        for row, index in enumerate(batch.indices.tolist()):
            for name, u, r in wanted[index]:
                maps[(name, u, r)] = outputs[name][row, u].cpu().clone()
    return lambda name, indices: (lambda u, r, index: maps[(name, u, r)])


def finalize(model, dataset, options: DissectOptions, stats: dict, counts: dict | None, out_dir, *,
             progress: Progress = None) -> DissectionResult:
    """Write every output from merged stats and counts (forwards only the top images again)."""
    options.validate()
    check_kind(stats, "dissect-stats")
    started = time.perf_counter()
    render_k = options.render_k or options.top_k
    get_maps = _forward_maps(model, dataset, options, stats, render_k, progress) if options.render else None
    timings = {"top_image_maps": time.perf_counter() - started}
    result = write_outputs(dataset, options, stats, counts, Path(out_dir), get_maps, progress, timings)
    result.timings["total"] = time.perf_counter() - started
    write_summaries(Path(out_dir), result)
    return result
