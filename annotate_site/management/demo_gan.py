"""`demo --with-gan`: the engine demo's layered generator (a sprite pathway per digit from layer2)
on mixture-of-digits canvases and its digit segmenter, trained with the
engine's quick sizes, dissected at layer2 and published as HITs on request; then the paint page works.

Separate from the default demo, which stays as fast as before: nothing here is imported without
the flag. Like the rest of the demo, every step reuses what an earlier run left.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.urls import reverse

from units.dissection.models import DissectionJob, Network, ProbeDataset
from units.dissection.services import DatasetSource, JobSettings, dataset_register, job_create, network_register

LAYER = "layer2"  # 200 units at 8x8 in sprites32, 20 per digit: where the engine's own GAN demo finds digit units


@dataclass(frozen=True)
class GanSizes:
    train_images: int
    gan_steps: int
    gan_batch: int
    seg_epochs: int
    seg_width: int
    seg_lr: float
    samples: int
    quantile: float  # the engine demo's: a digit covers more of a canvas than NetDissect's 0.005 assumes
    top_k: int


def sizes(quick: bool) -> GanSizes:
    """The engine demo's QUICK sizes (a few CPU minutes); `--quick` (tests) far smaller still."""
    if quick:
        return GanSizes(train_images=200, gan_steps=20, gan_batch=16, seg_epochs=1, seg_width=4, seg_lr=1e-2,
                        samples=40,
                        quantile=0.02, top_k=5)
    from tasks.engine.gan.demo import QUICK

    return GanSizes(train_images=QUICK.train_images, gan_steps=QUICK.gan_steps, gan_batch=QUICK.gan_batch,
                    seg_epochs=QUICK.seg_epochs, seg_width=QUICK.seg_width, seg_lr=QUICK.seg_lr,
                    samples=QUICK.dissect_samples, quantile=QUICK.quantile, top_k=15)


def _checkpoints(command, prefix: str, size: GanSizes) -> tuple[Path, Path]:
    import torch

    from tasks.engine.gan.data import make_canvases
    from tasks.engine.gan.demo import DemoSizes, gan_recipe
    from tasks.engine.gan.segmenter import SegmenterRecipe, train_segmenter
    from tasks.engine.gan.train import train_gan

    var = Path(settings.VAR_DIR)
    gen_file, seg_file = var / f"{prefix}-generator.pt", var / f"{prefix}-digitseg.pt"
    if gen_file.is_file() and seg_file.is_file():
        return gen_file, seg_file
    data = make_canvases(Path(settings.DATASETS_ROOT) / f"{prefix}-gan-canvases", n_images=size.train_images)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convs on a shared CPU: one thread is as fast and disturbs less
    try:
        recipe = SegmenterRecipe(epochs=size.seg_epochs, width=size.seg_width, lr=size.seg_lr)
        if not seg_file.is_file():
            command.say(f"Training the digit segmenter for {size.seg_epochs} epoch(s) ...")
            # Held-out canvases score it, and the scores ride in its checkpoint: the layer pages show them beside
            # the units' IoU, which is only as good as the segmenter.
            val = make_canvases(Path(settings.DATASETS_ROOT) / f"{prefix}-gan-canvases-val",
                                n_images=max(40, size.train_images // 5), split="val", seed=1)
            train_segmenter(data, seg_file, val_dir=val, recipe=recipe, device="cpu", progress=False)
        if not gen_file.is_file():
            command.say(f"Training the layered generator for {size.gan_steps} steps on "
                        f"{size.train_images} canvases (CPU) ...")
            gan = gan_recipe(DemoSizes(gan_steps=size.gan_steps, gan_batch=size.gan_batch))
            train_gan(data, gen_file, recipe=gan, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    return gen_file, seg_file


def _architecture(checkpoint: Path) -> str:
    """The architecture the trainer wrote into the checkpoint (the demo's recipe picks it)."""
    import torch

    return str(torch.load(checkpoint, map_location="cpu", weights_only=True)["arch"])


def gan_demo_build(command, *, prefix: str, quick: bool, wait: int, publish: bool = False) -> DissectionJob:
    """Register and dissect the demo generator, and publish its units when the requester asks (`publish`);
    `command` is the demo command (say, job, publish).

    Unpublished by default: the demo's generator is trained for minutes, so its units are weaker
    and its pictures harder to judge than the classifier's, and a new annotator should meet the
    classifier's HITs first. The publish page (or `--publish-gan`) puts them out."""
    size = sizes(quick)
    gen_name, seg_name = f"{prefix}-generator", f"{prefix}-digitseg"
    network = Network.objects.filter(project=command.project, name=gen_name).first()
    segmenter = ProbeDataset.objects.filter(project=command.project, name=seg_name).first()
    if network is None or segmenter is None:
        gen_file, seg_file = _checkpoints(command, prefix, size)
        network = network or network_register(
            project=command.project, name=gen_name, architecture=_architecture(gen_file), checkpoint=gen_file,
            description=f"Layered generator with a sprite pathway per digit, trained by the demo "
                        f"({size.gan_steps} steps on {size.train_images} canvases).")
        segmenter = segmenter or dataset_register(
            project=command.project, name=seg_name, kind=ProbeDataset.Kind.SEGMENTER,
            source=DatasetSource(path=str(seg_file)), any_path=True,
            description="Digit segmenter trained by the demo on real canvases; labels the generator's samples.")
    else:
        command.say(f"Generator {gen_name!r} and segmenter {seg_name!r} exist; reused.")
    job = command.job(prefix, network, segmenter, size.top_k, wait, create=lambda: job_create(
        network=network, dataset=segmenter,
        options=JobSettings([LAYER], top_k=size.top_k, quantile=size.quantile, iou_rule="original", batch_size=100,
                            samples=size.samples)))
    if publish:
        command.publish(job, pictures="Generated digit pictures")
    else:
        command.say(f"Generator units are not published (a new annotator starts on the classifier's); publish them "
                    f"on {reverse('publish')}?job={job.pk} or with `demo --with-gan --publish-gan`.")
    command.say(f"Paint generated digits: {reverse('dissection:paint', args=[job.pk])}")
    return job
