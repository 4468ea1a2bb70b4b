"""Generators in the registry (GAN Dissection): checking their checkpoints, registering their
segmenters, and what a generator job needs.

A generator is a `Network` whose architecture the engine's GAN package builds (`dcgan32`, ...).
Its probe is a `ProbeDataset` of kind `segmenter`: the segmenter checkpoint that labels the
generator's samples per pixel, whose classes are the concepts. Keeping the segmenter on the
dataset side means one segmenter serves many generators, and a generator job is the same
`DissectionJob(network, dataset)` with the same `Concept` rows as a classifier's, so
publishing, results and exports read its units unchanged.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.utils.text import slugify

from .errors import DissectionError, UploadError
from units.projects.models import Activity, Project
from units.projects.services import activity_record

from .models import Concept, Network, ProbeDataset
from .uploads import check_upload_size, project_upload_dir

GENERATOR_ARCHITECTURES = frozenset({Network.Architecture.DCGAN32, Network.Architecture.DCGAN64,
                                     Network.Architecture.CDCGAN32, Network.Architecture.SPRITES32})
DEFAULT_SAMPLES = 1000
MAX_SAMPLES = 200_000  # every sample's feature maps stay in memory during the engine's sweep
SEGMENTERS_DIR = "segmenters"  # under the project's upload folder: uploaded segmenter checkpoints


def network_kind(architecture: str) -> str:
    return Network.Kind.GENERATOR if architecture in GENERATOR_ARCHITECTURES else Network.Kind.CLASSIFIER


def generator_check(*, architecture: str, path: Path) -> None:
    """Load the checkpoint as a generator job will; a mismatch is a `DissectionError` with the engine's words."""
    from tasks.engine.errors import EngineError
    from tasks.engine.gan.models import load_generator

    try:
        load_generator(architecture, path)
    except EngineError as exc:
        raise DissectionError(str(exc)) from None


def segmenter_path(dataset: ProbeDataset) -> Path:
    path = Path(dataset.path)
    return path if path.is_absolute() else Path(settings.DATASETS_ROOT) / path


def generated_probe(seed: int = 0):
    """The engine's view of a generator's samples without any picture: their names
    (`image_name(i)`, as in topk.csv) and the concepts its dissection counts with, in IoU column order."""
    import numpy as np

    from tasks.engine.gan.samples import GeneratedSamples

    return GeneratedSamples(np.zeros((0, 1, 1, 3), dtype=np.uint8), seed)


def _segmenter_vocabulary(path: Path):
    """Load the segmenter (refusing what the engine refuses) and return the concepts it labels and
    its held-out scores (None when its checkpoint carries none)."""
    from tasks.engine.errors import EngineError
    from tasks.engine.gan.models import load_segmenter
    from tasks.engine.gan.segmenter import segmenter_scores

    try:
        load_segmenter(checkpoint=path)
    except EngineError as exc:
        raise DissectionError(str(exc)) from None
    return generated_probe(), segmenter_scores(path)


def segmenter_register(
    *,
    project: Project,
    name: str,
    path: str | Path = "",
    upload: BinaryIO | None = None,
    upload_size: int | None = None,
    description: str = "",
    created_by: User | None = None,
) -> ProbeDataset:
    """Register a segmenter checkpoint (a path on the server, or an upload) as a generator's probe.

    An upload is spooled to a temporary file, loaded by the engine, and only then copied to
    DATASETS_ROOT/projects/<project id>/segmenters/<name>.pt; a refusal keeps nothing.
    """
    if (upload is None) == (not str(path)):
        raise DissectionError("Give either the segmenter checkpoint's path or upload it (one of the two).")
    tmp: Path | None = None
    final: Path | None = None
    try:
        if upload is not None:
            try:
                check_upload_size(upload_size or 0, what="segmenter checkpoint")
            except UploadError as exc:
                raise DissectionError(str(exc)) from None
            with tempfile.NamedTemporaryFile(suffix=".pt", delete=False) as out:
                shutil.copyfileobj(upload, out, 1024 * 1024)
                tmp = source = Path(out.name)
        else:
            source = Path(path)
            if not source.is_absolute():
                source = Path(settings.DATASETS_ROOT) / source
            if not source.is_file():
                raise DissectionError(f"The segmenter checkpoint {source} does not exist.")
        try:
            vocabulary, scores = _segmenter_vocabulary(source)
        except DissectionError as exc:
            if tmp is None:
                raise
            shown = f"uploaded file {getattr(upload, 'name', None) or 'segmenter'!r}"
            raise DissectionError(str(exc).replace(str(tmp), shown)) from None
        stored_path = str(path)
        if tmp is not None:
            relative = project_upload_dir(project.pk) / SEGMENTERS_DIR / f"{slugify(name) or 'segmenter'}.pt"
            final = Path(settings.DATASETS_ROOT) / relative
            if final.exists():
                raise DissectionError(f"The file {relative} exists already; choose another name.")
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(tmp, final)
            stored_path = relative.as_posix()
        with transaction.atomic():
            dataset = ProbeDataset.objects.create(
                project=project, name=name, kind=ProbeDataset.Kind.SEGMENTER, path=stored_path, num_images=0,
                categories=list(vocabulary.categories),
                meta={"probe": "generated samples", "segmenter_scores": scores},
                description=description, created_by=created_by,
            )
            Concept.objects.bulk_create(
                Concept(dataset=dataset, number=c.number, name=c.name, category=c.category) for c in vocabulary.concepts
            )
            activity_record(project=project, actor=created_by, verb=Activity.Verb.REGISTERED,
                            summary=f"segmenter {dataset.name}")
    except BaseException:
        kept = ProbeDataset.objects.filter(project=project, name=name).exists()
        if final is not None and final.exists() and not kept:
            final.unlink(missing_ok=True)
        raise
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return dataset


def job_kind_check(*, network: Network, dataset: ProbeDataset, shards: int, samples: int | None) -> int | None:
    """The job's kind fits its network and probe; returns the sample count (None for classifiers)."""
    is_segmenter = dataset.kind == ProbeDataset.Kind.SEGMENTER
    if network.kind != Network.Kind.GENERATOR:
        if is_segmenter:
            raise DissectionError(f"{dataset.name} is a segmenter, the probe of a generator; {network.name} is a "
                                  f"classifier: "
                             "choose an image dataset.")
        if samples is not None:
            raise DissectionError("samples is for generator jobs; a classifier job dissects every image of its "
                                  "dataset.")
        return None
    if not is_segmenter:
        raise DissectionError(f"{network.name} is a generator: its probe is a segmenter (a dataset of kind "
                              f"'segmenter'), "
                         f"not the {dataset.get_kind_display()} {dataset.name}.")
    if int(shards) != 1:
        raise DissectionError("Generator jobs run on one worker; use shards = 1.")
    samples = DEFAULT_SAMPLES if samples is None else int(samples)
    if not 1 <= samples <= MAX_SAMPLES:
        raise DissectionError(f"samples must be between 1 and {MAX_SAMPLES}.")
    return samples
