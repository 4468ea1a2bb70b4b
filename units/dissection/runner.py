"""Running a dissection job with the engine: whole runs, the shard steps, and sentinel images.

The Celery tasks in `tasks/jobs.py` call these functions with ids. Each step re-reads the job
row, checks that its attempt is still the live one, and writes its results through
`job_state`/`job_results`, so a retried or redelivered step is harmless.

Shard files live under MEDIA_ROOT/jobs/<id>/a<attempt>/shards/ and are written atomically
(temporary file + rename), so a step killed half-way never leaves a file that looks complete.
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from . import job_state
from .job_results import SentinelPick, attempt_dir_rel, job_store_results
from .models import DissectionJob

log = logging.getLogger(__name__)

# Whole run: engine stage -> (start, end) of the progress bar.
WHOLE_RUN_PHASES = {"sweep": (0.0, 0.4), "thresholds": (0.4, 0.5), "counts": (0.5, 0.7), "render": (0.7, 0.95),
                    "sentinels": (0.95, 0.98)}
SENTINEL_SAMPLE = 200  # images searched for each unit's lowest activations


class StaleAttempt(Exception):
    """The job was re-run, failed or finished meanwhile: this step has nothing left to do."""


@dataclass
class JobContext:
    job: DissectionJob
    attempt: int
    model: object
    dataset: object
    options: object
    out_dir: Path
    out_rel: str


def device() -> str:
    """settings.UNITCROWD_DEVICE: "cuda:N", "cpu", or empty/"auto" (CUDA when present; with several
    visible GPUs, the one with the most free memory right now, so workers sharing a host spread out)."""
    import torch

    from tasks.engine.models import default_device

    chosen = settings.UNITCROWD_DEVICE
    if chosen and chosen != "auto":
        return chosen
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        free = [torch.cuda.mem_get_info(i)[0] for i in range(torch.cuda.device_count())]
        return f"cuda:{max(range(len(free)), key=free.__getitem__)}"
    return default_device()


def _step_delay() -> None:
    # Test hook (UNITCROWD_JOB_STEP_DELAY): slows each progress report so a test can kill a
    # worker in the middle of a task. Zero in normal use.
    if settings.UNITCROWD_JOB_STEP_DELAY:
        time.sleep(settings.UNITCROWD_JOB_STEP_DELAY)


def load_context(job_id: int, attempt: int) -> JobContext:
    """The job's model, engine dataset and options; engine errors propagate for the caller to report."""
    from tasks.engine.datasets import NETDISSECT_MEAN, NETDISSECT_STD, open_dataset
    from tasks.engine.capture import parse_grid
    from tasks.engine.dissect import DissectOptions
    from tasks.engine.models import load_model

    job = DissectionJob.objects.select_related("network", "dataset").get(pk=job_id)
    if job.attempts != attempt or job.status not in (DissectionJob.Status.QUEUED, DissectionJob.Status.RUNNING):
        raise StaleAttempt
    network, dataset_row = job.network, job.dataset
    checkpoint = network.checkpoint.path if network.checkpoint else None
    model = load_model(network.architecture, checkpoint, num_classes=network.num_classes, image_size=network.input_size)
    dev = device()
    model.to(dev)
    dataset = open_dataset(
        dataset_row.engine_spec, mean=network.mean or NETDISSECT_MEAN, std=network.std or NETDISSECT_STD,
        image_size=network.input_size or dataset_row.image_size,
    )
    options = DissectOptions(
        layers=list(job.layers), top_k=job.top_k, quantile=job.quantile, iou_rule=job.iou_rule,
        batch_size=job.batch_size, device=dev, progress_bar=False,
        # A redelivered task (its worker was killed) goes on from the engine's last finished chunk:
        # the stage files in <out>/.dissect-cache/ are reused when the inputs match, discarded otherwise.
        resume=True, channels_last=dev != "cpu", grid=parse_grid(job.token_grid),
    )
    out_rel = attempt_dir_rel(job.pk, attempt)
    out_dir = Path(settings.MEDIA_ROOT) / out_rel
    out_dir.mkdir(parents=True, exist_ok=True)
    return JobContext(job, attempt, model, dataset, options, out_dir, out_rel)


def _store(ctx: JobContext, result) -> bool:
    job_state.job_set_stage(job_id=ctx.job.pk, attempt=ctx.attempt, stage="finding sentinel images")
    sentinels = collect_sentinels(ctx, result)
    job_state.job_set_stage(job_id=ctx.job.pk, attempt=ctx.attempt, stage=job_state.STAGE_STORE)
    return job_store_results(
        job_id=ctx.job.pk, attempt=ctx.attempt, result=result, image_name=ctx.dataset.image_name,
        concept_numbers=[c.number for c in ctx.dataset.concepts], out_rel=ctx.out_rel, sentinels=sentinels,
    )


# -- whole run ----------------------------------------------------------------------------------


def run_whole(job_id: int, attempt: int) -> bool:
    """One worker does the job with the engine's single-sweep `dissect`."""
    from tasks.engine.dissect import dissect

    ctx = load_context(job_id, attempt)

    def progress(stage: str, fraction: float) -> None:
        start, end = WHOLE_RUN_PHASES.get(stage, (0.0, 0.95))
        job_state.job_set_progress(job_id=job_id, attempt=attempt, stage=stage,
                                   progress=start + (end - start) * fraction)
        _step_delay()

    job_state.job_set_stage(job_id=job_id, attempt=attempt, stage="sweep")
    result = dissect(ctx.model, ctx.dataset, ctx.options, ctx.out_dir, progress=progress)
    return _store(ctx, result)


# -- shards -------------------------------------------------------------------------------------


def shard_indices(num_images: int, shards: int, shard: int) -> list[int]:
    """Contiguous, disjoint slices covering every image once."""
    return [int(i) for i in np.array_split(np.arange(num_images), shards)[shard]]


def _shard_dir(ctx: JobContext) -> Path:
    path = ctx.out_dir / "shards"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _save_atomic(state: dict, path: Path) -> None:
    import torch

    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load(path: Path) -> dict:
    import torch

    # Our own files, written by _save_atomic: plain dicts of tensors, lists and numbers, which the
    # weights-only unpickler reads. Never the full unpickler: whoever can write under MEDIA_ROOT (an
    # upload gone wrong, a shared volume) would run code in the worker.
    return torch.load(path, map_location="cpu", weights_only=True)


def _shard_progress(ctx: JobContext, stage: str, shards: int) -> Callable[[str, float], None]:
    start, end = job_state.PHASES[stage]
    last = [0.0]

    def progress(_engine_stage: str, fraction: float) -> None:
        delta = (fraction - last[0]) * (end - start) / shards
        last[0] = fraction
        job_state.job_add_progress(job_id=ctx.job.pk, attempt=ctx.attempt, stage=stage, delta=delta, cap=end)
        _step_delay()

    return progress


def _all_present(folder: Path, prefix: str, shards: int) -> bool:
    return all((folder / f"{prefix}-{i}.pt").is_file() for i in range(shards))


def run_collect_stats(job_id: int, attempt: int, shard: int) -> bool:
    """Statistics of one shard; True when this call saw the last shard finish (merge is next)."""
    from tasks.engine.dissect import collect_stats

    ctx = load_context(job_id, attempt)
    folder, shards = _shard_dir(ctx), ctx.job.shards
    path = folder / f"stats-{shard}.pt"
    if not path.is_file():  # a redelivered shard whose file exists has nothing to redo
        indices = shard_indices(len(ctx.dataset), shards, shard)
        state = collect_stats(ctx.model, ctx.dataset, ctx.options, indices=indices,
                              progress=_shard_progress(ctx, job_state.STAGE_STATS, shards))
        _save_atomic(state, path)
    return _all_present(folder, "stats", shards) and job_state.job_advance_stage(
        job_id=job_id, attempt=attempt, from_stage=job_state.STAGE_STATS, to_stage=job_state.STAGE_MERGE_STATS
    )


def run_merge_stats(job_id: int, attempt: int) -> bool:
    from tasks.engine.dissect import merge_stats

    ctx = load_context(job_id, attempt)
    folder, shards = _shard_dir(ctx), ctx.job.shards
    merged = folder / "stats.pt"
    if not merged.is_file():
        _save_atomic(merge_stats([_load(folder / f"stats-{i}.pt") for i in range(shards)]), merged)
    job_state.job_advance_stage(
        job_id=job_id, attempt=attempt, from_stage=job_state.STAGE_MERGE_STATS, to_stage=job_state.STAGE_COUNTS
    )
    job_state.job_set_progress(job_id=job_id, attempt=attempt, stage=job_state.STAGE_COUNTS,
                               progress=job_state.PHASES[job_state.STAGE_COUNTS][0])
    return True


def run_collect_counts(job_id: int, attempt: int, shard: int) -> bool:
    from tasks.engine.dissect import collect_counts

    ctx = load_context(job_id, attempt)
    folder, shards = _shard_dir(ctx), ctx.job.shards
    path = folder / f"counts-{shard}.pt"
    if not path.is_file():
        indices = shard_indices(len(ctx.dataset), shards, shard)
        state = collect_counts(ctx.model, ctx.dataset, ctx.options, _load(folder / "stats.pt"), indices=indices,
                               progress=_shard_progress(ctx, job_state.STAGE_COUNTS, shards))
        _save_atomic(state, path)
    return _all_present(folder, "counts", shards) and job_state.job_advance_stage(
        job_id=job_id, attempt=attempt, from_stage=job_state.STAGE_COUNTS, to_stage=job_state.STAGE_MERGE_COUNTS
    )


def run_finalize(job_id: int, attempt: int) -> bool:
    from tasks.engine.dissect import finalize, merge_counts

    ctx = load_context(job_id, attempt)
    folder, shards = _shard_dir(ctx), ctx.job.shards
    stats = _load(folder / "stats.pt")
    counts = merge_counts([_load(folder / f"counts-{i}.pt") for i in range(shards)])
    start, end = job_state.PHASES[job_state.STAGE_FINALIZE]
    job_state.job_set_stage(job_id=job_id, attempt=attempt, stage=job_state.STAGE_FINALIZE, progress=start)

    def progress(_stage: str, fraction: float) -> None:
        job_state.job_set_progress(job_id=job_id, attempt=attempt, stage=job_state.STAGE_FINALIZE,
                                   progress=start + (end - start) * fraction)

    result = finalize(ctx.model, ctx.dataset, ctx.options, stats, counts, ctx.out_dir, progress=progress)
    return _store(ctx, result)


# -- sentinels ----------------------------------------------------------------------------------


def collect_sentinels(ctx: JobContext, result) -> dict[str, dict[int, list[SentinelPick]]]:
    """Per unit, a few images of a sample where the unit barely fires, rendered like exemplars.

    ICLR 2015 mixed such images into the HIT; an annotator who keeps them as fitting is not
    paying attention. The pictures use the same overlay as the top images (so they do not stand
    out by style); being low-activation, they are mostly dimmed.
    """
    import torch

    from tasks.engine.capture import LayerCapture
    from tasks.engine.datasets import make_loader
    from tasks.engine.render import image_mask, overlay, save_picture

    per_unit = settings.UNITCROWD_SENTINELS_PER_UNIT
    n = len(ctx.dataset)
    if per_unit <= 0 or n == 0:
        return {}
    sample = sorted({int(i) for i in np.linspace(0, n - 1, num=min(SENTINEL_SAMPLE, n))})
    maxima: dict[str, list[np.ndarray]] = {name: [] for name in result.layers}
    seen: list[int] = []
    model = ctx.model
    with LayerCapture(model, list(result.layers), grid=ctx.options.grid) as capture, torch.inference_mode():
        for batch in make_loader(ctx.dataset, batch_size=ctx.options.batch_size, indices=sample):
            outputs = capture.run(batch.images.to(ctx.options.device))
            seen += batch.indices.tolist()
            for name, acts in outputs.items():
                maxima[name].append(acts.flatten(2).amax(dim=2).cpu().numpy())
    if not seen:
        return {}
    picks: dict[str, dict[int, list[SentinelPick]]] = {}
    for name, lr in result.layers.items():
        table = np.concatenate(maxima[name])  # [images, units]
        chosen_rows: dict[int, list[int]] = {}
        for u in range(lr.num_units):
            top = set(int(i) for i in np.asarray(lr.topk_indices)[u])
            order = np.argsort(table[:, u], kind="stable")
            chosen_rows[u] = [int(r) for r in order if seen[int(r)] not in top][:per_unit]
        wanted = sorted({seen[r] for rows in chosen_rows.values() for r in rows})
        maps = _maps_for(ctx, name, wanted)
        layer_picks: dict[int, list[SentinelPick]] = {}
        for u, rows in chosen_rows.items():
            for k, r in enumerate(rows):
                index = seen[r]
                rgb = np.asarray(ctx.dataset.load_rgb(index).convert("RGB"))
                mask = image_mask(maps[index][u], rgb.shape[:2], float(lr.thresholds[u]))
                rel = f"{name}/sentinels/unit_{u + 1:04d}_{k:02d}.jpg"
                plain_rel = f"{name}/sentinels/plain_{index:06d}.jpg"
                save_picture(overlay(rgb, mask), ctx.out_dir / rel)
                if not (ctx.out_dir / plain_rel).is_file():
                    save_picture(rgb, ctx.out_dir / plain_rel)
                layer_picks.setdefault(u, []).append(
                    SentinelPick(index, ctx.dataset.image_name(index), float(table[r, u]), rel, plain_rel)
                )
        picks[name] = layer_picks
    return picks


def _maps_for(ctx: JobContext, layer: str, indices: list[int]) -> dict[int, np.ndarray]:
    import torch

    from tasks.engine.capture import LayerCapture
    from tasks.engine.datasets import make_loader

    maps = {}
    with LayerCapture(ctx.model, [layer], grid=ctx.options.grid) as capture, torch.inference_mode():
        for batch in make_loader(ctx.dataset, batch_size=ctx.options.batch_size, indices=indices):
            out = capture.run(batch.images.to(ctx.options.device))[layer].cpu()
            for row, index in enumerate(batch.indices.tolist()):
                maps[index] = out[row]
    return maps
