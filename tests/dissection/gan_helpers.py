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
    from units.dissection.services import dataset_register, job_create, network_register

    gen_file, seg_file = write_tiny_checkpoints(folder)
    n = next(_seq)
    network = network_register(name=f"tinygan{n}", architecture="dcgan32", checkpoint=gen_file, created_by=created_by)
    segmenter = dataset_register(name=f"tinyseg{n}", kind="segmenter", path=str(seg_file), created_by=created_by)
    return job_create(network=network, dataset=segmenter, layers=list(layers), top_k=top_k, batch_size=8,
                      samples=samples, sample_seed=sample_seed, iou_rule="original", created_by=created_by)
