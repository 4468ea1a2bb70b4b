"""A tiny random generator and segmenter, registered through the services, for the GAN platform tests."""
from __future__ import annotations

import itertools
from pathlib import Path

_seq = itertools.count(1)


def write_tiny_checkpoints(folder: Path, *, width: int = 8, z_dim: int = 16) -> tuple[Path, Path]:
    """(generator.pt, segmenter.pt): seeded random weights, in the engine's checkpoint format."""
    from tasks.engine.gan.models import load_generator, load_segmenter, save_checkpoint

    gen_file, seg_file = folder / "generator.pt", folder / "segmenter.pt"
    if not gen_file.is_file():
        save_checkpoint(load_generator("dcgan32", config={"width": width, "z_dim": z_dim}), gen_file,
                        kind="generator", arch="dcgan32")
    if not seg_file.is_file():
        save_checkpoint(load_segmenter("digitseg", config={"width": 4}), seg_file, kind="segmenter", arch="digitseg")
    return gen_file, seg_file


def make_generator_job(folder: Path, *, layers=("layer1", "layer2"), samples: int = 24, top_k: int = 4,
                       sample_seed: int = 0, created_by=None):
    """Generator (dcgan32) + segmenter registered through the services, and a pending job."""
    from units.dissection.services import DatasetSource, JobSettings, dataset_register, job_create, network_register

    from tests.factories import lab_project

    gen_file, seg_file = write_tiny_checkpoints(folder)
    n = next(_seq)
    network = network_register(project=lab_project(), name=f"tinygan{n}", architecture="dcgan32", checkpoint=gen_file,
                               created_by=created_by)
    segmenter = dataset_register(
        project=lab_project(),
        name=f"tinyseg{n}",
        kind="segmenter",
        source=DatasetSource(path=str(seg_file)),
        created_by=created_by,
        any_path=True,
    )  # a tmp file, registered as the operator's command would
    options = JobSettings(list(layers), top_k=top_k, batch_size=8, samples=samples, sample_seed=sample_seed,
                          iou_rule="original")
    return job_create(network=network, dataset=segmenter, options=options, created_by=created_by)


def make_finished_generator_job(folder: Path, *, units: int = 16, created_by=None):
    """A generator job marked done with rows for layer2 (16 units at width 8) and a concept_means.npy,
    written directly (no engine run): what the paint page reads, in a fraction of a second."""
    import numpy as np
    from django.conf import settings

    from units.dissection.models import DissectionJob, Layer, Unit

    job = make_generator_job(folder, layers=("layer2",), created_by=created_by)
    out_rel = f"jobs/{job.pk}/a1"
    layer = Layer.objects.create(job=job, name="layer2", num_units=units)
    Unit.objects.bulk_create(Unit(layer=layer, index=u, threshold=0.5, max_activation=1.0, iou_label=str(u % 10),
                                  iou_category="object", iou_score=0.01 * (u + 1)) for u in range(units))
    means = np.arange(units * 10, dtype=np.float32).reshape(units, 10) / 10 + 0.5
    (Path(settings.MEDIA_ROOT) / out_rel / "layer2").mkdir(parents=True, exist_ok=True)
    np.save(Path(settings.MEDIA_ROOT) / out_rel / "layer2" / "concept_means.npy", means)
    DissectionJob.objects.filter(pk=job.pk).update(status="succeeded", progress=1.0, output_dir=out_rel, attempts=1)
    job.refresh_from_db()
    return job
