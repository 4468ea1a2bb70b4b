"""Running a generator's dissection job (GAN Dissection) with the engine, stored as a classifier's.

`tasks.jobs.dissect_job` sends a job of kind generator here instead of `runner.run_whole`.
The engine writes the classifier dissection's files; `job_results.job_store_results` turns
them into the same Layer/Unit/Exemplar/UnitConceptScore rows, so publishing, results and
exports read generator units unchanged. Generator jobs do not shard (the sweep is cheap next
to a classifier's; the engine keeps every sample's maps in memory for its IQR thresholds).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from django.conf import settings

from . import job_state
from .generators import generated_probe, segmenter_path
from .job_results import SentinelPick, attempt_dir_rel, job_store_results
from .models import DissectionJob
from .runner import SENTINEL_SAMPLE, WHOLE_RUN_PHASES, StaleAttempt, device


@dataclass
class GanJobContext:
    job: DissectionJob
    attempt: int
    generator: object
    segmenter: object
    options: object
    out_dir: Path
    out_rel: str


def load_generator_context(job_id: int, attempt: int) -> GanJobContext:
    """The job's generator, segmenter and options; engine errors propagate for the caller to report."""
    from tasks.engine.gan.dissect import GanDissectOptions
    from tasks.engine.gan.models import load_generator, load_segmenter

    job = DissectionJob.objects.select_related("network", "dataset").get(pk=job_id)
    if job.attempts != attempt or job.status not in (DissectionJob.Status.QUEUED, DissectionJob.Status.RUNNING):
        raise StaleAttempt
    network = job.network
    generator = load_generator(network.architecture, network.checkpoint.path if network.checkpoint else None)
    segmenter = load_segmenter(checkpoint=segmenter_path(job.dataset))
    dev = device()
    generator.to(dev)
    segmenter.to(dev)
    options = GanDissectOptions(
        layers=list(job.layers), n_samples=job.samples or 1, seed=job.sample_seed, quantile=job.quantile,
        top_k=job.top_k, iou_rule=job.iou_rule, batch_size=job.batch_size, device=dev, progress_bar=False,
    )
    out_rel = attempt_dir_rel(job.pk, attempt)
    out_dir = Path(settings.MEDIA_ROOT) / out_rel
    out_dir.mkdir(parents=True, exist_ok=True)
    return GanJobContext(job, attempt, generator, segmenter, options, out_dir, out_rel)


def run_generator(job_id: int, attempt: int) -> bool:
    """One worker dissects the generator on its samples and stores the rows."""
    from tasks.engine.gan.dissect import dissect_generator

    ctx = load_generator_context(job_id, attempt)

    def progress(stage: str, fraction: float) -> None:
        start, end = WHOLE_RUN_PHASES.get(stage, (0.0, 0.95))
        job_state.job_set_progress(job_id=job_id, attempt=attempt, stage=stage,
                                   progress=start + (end - start) * fraction)

    job_state.job_set_stage(job_id=job_id, attempt=attempt, stage="sweep")
    for stale in ctx.out_dir.iterdir():  # a redelivered task starts afresh, never on half a run's files
        shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
    result = dissect_generator(ctx.generator, ctx.segmenter, ctx.options, ctx.out_dir, progress=progress)
    job_state.job_set_stage(job_id=job_id, attempt=attempt, stage="finding sentinel images")
    sentinels = generator_sentinels(ctx, result)
    job_state.job_set_stage(job_id=job_id, attempt=attempt, stage=job_state.STAGE_STORE)
    probe = generated_probe(ctx.options.seed)
    return job_store_results(
        job_id=job_id, attempt=attempt, result=result, image_name=probe.image_name,
        concept_numbers=[c.number for c in probe.concepts], out_rel=ctx.out_rel, sentinels=sentinels,
    )


def generator_sentinels(ctx: GanJobContext, result) -> dict[str, dict[int, list[SentinelPick]]]:
    """Per unit, a few generated samples where the unit barely fires, rendered like its exemplars.

    The same quality check as a classifier's sentinels (ICLR 2015), drawn from an evenly spread
    subset of the job's own samples, so a sentinel's index names the same z as a top image's.
    """
    import torch

    from tasks.engine.gan.dissect import generate_and_capture
    from tasks.engine.gan.models import to_display_rgb
    from tasks.engine.gan.samples import sample_z
    from tasks.engine.render import image_mask, overlay, save_picture

    per_unit = settings.UNITCROWD_SENTINELS_PER_UNIT
    n = ctx.options.n_samples
    if per_unit <= 0:
        return {}
    sample = sorted({int(i) for i in np.linspace(0, n - 1, num=min(SENTINEL_SAMPLE, n))})
    z = sample_z(sample, int(ctx.generator.z_dim), ctx.options.seed)
    names = list(result.layers)
    pictures, maps = [], {name: [] for name in names}
    for _, images, _, outputs in generate_and_capture(ctx.generator, ctx.segmenter, z, names, ctx.options.batch_size):
        # Enlarged and shown as the exemplars are (the engine's rule), so a sentinel looks like a top picture.
        pictures.append(to_display_rgb(images, ctx.options.picture_size).numpy())
        for name in names:
            maps[name].append(outputs[name])
    rgb = np.concatenate(pictures)
    name_of = generated_probe(ctx.options.seed).image_name
    picks: dict[str, dict[int, list[SentinelPick]]] = {}
    for name, lr in result.layers.items():
        feats = torch.cat(maps[name])  # [samples, units, h, w]
        maxima = feats.flatten(2).amax(dim=2).numpy()
        layer_picks: dict[int, list[SentinelPick]] = {}
        for u in range(lr.num_units):
            top = {int(i) for i in np.asarray(lr.topk_indices)[u]}
            rows = [int(r) for r in np.argsort(maxima[:, u], kind="stable") if sample[int(r)] not in top][:per_unit]
            for k, r in enumerate(rows):
                index = sample[r]
                rel = f"{name}/sentinels/unit_{u + 1:04d}_{k:02d}.png"
                plain_rel = f"{name}/sentinels/plain_{index:06d}.png"
                mask = image_mask(feats[r, u], rgb.shape[1:3], float(lr.thresholds[u]))
                save_picture(overlay(rgb[r], mask), ctx.out_dir / rel)
                if not (ctx.out_dir / plain_rel).is_file():
                    save_picture(rgb[r], ctx.out_dir / plain_rel)
                layer_picks.setdefault(u, []).append(
                    SentinelPick(index, name_of(index), float(maxima[r, u]), rel, plain_rel)
                )
        picks[name] = layer_picks
    return picks
