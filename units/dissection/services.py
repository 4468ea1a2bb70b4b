"""Writes of the compute side: registering networks and datasets, creating and starting jobs.

Every function is keyword-only, runs in one transaction and raises `DissectionError` (with a message
for the user) on bad input, leaving nothing half-written. The engine is imported lazily: it
pulls in torch, which the web process should not pay for at import time.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files import File
from django.db import connection, transaction
from django.utils.text import slugify

from annotate_site.celery import enqueue
from units.projects.models import Activity, Project
from units.projects.services import activity_record

from .errors import DissectionError, UploadError
from .generators import GENERATOR_ARCHITECTURES, generator_check, job_kind_check, network_kind, segmenter_register
from .layer_picker import layer_name_problem
from .models import Concept, DissectionJob, Network, ProbeDataset, Unit
from .uploads import check_upload_size, extract_dataset_zip, in_other_projects_uploads, project_upload_dir

log = logging.getLogger(__name__)

MAX_TOP_K = 100
MAX_SHARDS = 64
IOU_RULES = ("lite", "original")

__all__ = [
    "DatasetSource", "DissectionError", "JobSettings", "NetworkInput", "checkpoint_check", "dataset_register",
    "job_create", "job_start", "network_register",
]


# -- networks ---------------------------------------------------------------------------------


def _check_normalisation(mean: Sequence[float] | None, std: Sequence[float] | None) -> tuple[list[float], list[float]]:
    mean, std = list(mean or []), list(std or [])
    if not mean and not std:
        return [], []  # the engine's default (NetDissect-Lite's normalisation)
    try:
        mean, std = [float(v) for v in mean], [float(v) for v in std]
    except (TypeError, ValueError):
        raise DissectionError("mean and std must be numbers, three of each (0..1 units, e.g. "
                              "0.485,0.456,0.406).") from None
    if len(mean) != 3 or len(std) != 3:
        raise DissectionError(f"mean and std need three numbers each (R,G,B in 0..1 units); got {len(mean)} and "
                              f"{len(std)}.")
    if min(std) <= 0:
        raise DissectionError("every std must be positive.")
    return mean, std


def checkpoint_check(
    *, architecture: str, path: Path, num_classes: int | None, input_size: int | None = None
) -> list[str]:
    """Load the checkpoint as the engine will; returns the class names it stores (may be empty)."""
    if architecture in GENERATOR_ARCHITECTURES:
        generator_check(architecture=architecture, path=path)
        return []
    from tasks.engine.errors import EngineError
    from tasks.engine.models import load_model

    try:
        model = load_model(architecture, path, num_classes=num_classes, image_size=input_size)
    except EngineError as exc:
        raise DissectionError(str(exc)) from None
    return list(getattr(model, "class_names", []) or [])


def _program_input_size(path: Path) -> int | None:
    """The image size a program was exported for (None: any size)."""
    from tasks.engine.models import load_model

    return getattr(load_model(Network.Architecture.PROGRAM, path), "fixed_input_size", None)


def _architecture_input(architecture: str, mean: list[float], std: list[float], input_size: int | None
                        ) -> tuple[list[float], list[float], int | None]:
    """Check the architecture name against the engine's catalogue; fill in its weights' normalisation
    and, for a fixed-size network, its input size, where the user gave none."""
    if architecture in GENERATOR_ARCHITECTURES or architecture in (
        Network.Architecture.MIXTURENET,
        Network.Architecture.PROGRAM,
    ):
        return mean, std, input_size
    from tasks.engine.catalogue import NETDISSECT_ARCHITECTURES, check_name, input_spec
    from tasks.engine.errors import EngineError

    try:
        check_name(architecture)
        spec = input_spec(architecture)
    except EngineError as exc:
        raise DissectionError(str(exc)) from None
    if not mean and not std and architecture not in NETDISSECT_ARCHITECTURES:
        mean, std = list(spec.mean), list(spec.std)
    if input_size is None and spec.fixed:
        input_size = spec.size
    return mean, std, input_size


@dataclass(frozen=True)
class NetworkInput:
    """What a network takes and gives: its classes, input normalisation and input size (empty: the architecture's)."""

    num_classes: int | None = None
    class_names: Sequence[str] = ()
    mean: Sequence[float] = ()
    std: Sequence[float] = ()
    input_size: int | None = None


def network_register(
    *,
    project: Project,
    name: str,
    architecture: str,
    checkpoint: BinaryIO | Path | None = None,
    checkpoint_size: int | None = None,
    inputs: NetworkInput | None = None,
    description: str = "",
    created_by: User | None = None,
) -> Network:
    """Register a network; a checkpoint (uploaded file or path) is kept only if the engine loads it.

    `architecture` is any name the engine builds (every torchvision classification model,
    ``timm:<name>``, ``mixturenet``), a generator, or ``program``: the checkpoint is then a
    torch.export ``.pt2`` program. Empty mean/std and input size (`inputs`) take the architecture's own."""
    inputs = inputs or NetworkInput()
    num_classes, class_names, input_size = inputs.num_classes, inputs.class_names, inputs.input_size
    name = (name or "").strip()
    if not name:
        raise DissectionError("A network needs a name.")
    architecture = (architecture or "").strip()
    if Network.objects.filter(project=project, name=name).exists():
        raise DissectionError(f"A network named {name!r} exists already; choose another name.")
    mean, std = _check_normalisation(inputs.mean, inputs.std)
    if input_size is not None and not 8 <= input_size <= 4096:
        raise DissectionError(f"input size must be 8..4096 pixels, got {input_size}.")
    mean, std, input_size = _architecture_input(architecture, mean, std, input_size)
    if architecture == Network.Architecture.PROGRAM and checkpoint is None:
        raise DissectionError(
            "An exported program is registered with its .pt2 file (torch.export.save) as the checkpoint."
        )
    names = [str(c).strip() for c in (class_names or []) if str(c).strip()]
    if architecture in GENERATOR_ARCHITECTURES and (mean or std or num_classes or names or input_size):
        raise DissectionError("A generator has no classes and no input normalisation; leave classes, mean and std "
                              "empty.")

    stored_from: Path | None = None
    tmp: Path | None = None
    suffix = ".pt2" if architecture == Network.Architecture.PROGRAM else ".pt"
    try:
        if isinstance(checkpoint, (str, Path)):
            stored_from = Path(checkpoint)
            if not stored_from.is_file():
                raise DissectionError(f"The checkpoint {stored_from} does not exist.")
        elif checkpoint is not None:
            if checkpoint_size is not None:
                try:
                    check_upload_size(checkpoint_size, what="checkpoint")
                except UploadError as exc:
                    raise DissectionError(str(exc)) from None
            # The engine loads from a path; spool the upload to a temporary file first.
            with tempfile.NamedTemporaryFile(suffix=suffix, delete=False) as out:
                shutil.copyfileobj(checkpoint, out, 1024 * 1024)
                tmp = stored_from = Path(out.name)
        if stored_from is not None:
            try:
                stored_names = checkpoint_check(architecture=architecture, path=stored_from, num_classes=num_classes,
                                                input_size=input_size)
            except DissectionError as exc:
                if tmp is None:
                    raise
                # The engine names the temporary spool file, which means nothing to the user: name their file.
                shown = f"uploaded file {getattr(checkpoint, 'name', None) or 'checkpoint'!r}"
                raise DissectionError(str(exc).replace(f"checkpoint {tmp}", shown).replace(str(tmp), shown)) from None
            names = names or stored_names
            if architecture == Network.Architecture.PROGRAM and input_size is None:
                input_size = _program_input_size(stored_from)
        with transaction.atomic():
            network = Network.objects.create(
                project=project, name=name, architecture=architecture, kind=network_kind(architecture),
                num_classes=num_classes or (len(names) or None),
                class_names=names, mean=mean, std=std, input_size=input_size, description=description,
                created_by=created_by,
            )
            if stored_from is not None:
                with stored_from.open("rb") as f:
                    network.checkpoint.save(f"{slugify(name) or 'network'}{suffix}", File(f), save=False)
                network.save(update_fields=["checkpoint"])
            activity_record(project=project, actor=created_by, verb=Activity.Verb.REGISTERED,
                            summary=f"network {network.name} ({architecture})")
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return network


# -- datasets ---------------------------------------------------------------------------------


def _open_engine_dataset(kind: str, root: Path, image_size: int | None):
    from tasks.engine.datasets import open_dataset
    from tasks.engine.errors import EngineError

    prefix = "folder" if kind == ProbeDataset.Kind.FOLDER else "broden"
    try:
        return open_dataset(f"{prefix}:{root}", image_size=image_size)
    except EngineError as exc:
        raise DissectionError(str(exc)) from None


def _read_meta(root: Path) -> dict:
    import json

    path = root / "meta.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DissectionError(f"{path} is not valid JSON ({exc}).") from None


def _dataset_path(path: str | Path) -> Path:
    """A registered path as the server reads it: relative paths lie under DATASETS_ROOT."""
    root = Path(path)
    return root if root.is_absolute() else Path(settings.DATASETS_ROOT) / root


def _check_dataset_path(root: Path, project: Project) -> None:
    allowed = [Path(settings.DATASETS_ROOT), *settings.DATASET_PATHS_ALLOWED]
    real = root.resolve()
    # Another project's uploads are refused with the same words as a folder outside: not even
    # whether it exists is told.
    if in_other_projects_uploads(real, project.pk) or not any(real.is_relative_to(folder.resolve())
                                                              for folder in allowed):
        raise DissectionError(
            f"The dataset folder {root} is outside the dataset folders ({', '.join(str(f) for f in allowed)}); "
            "put it under DATASETS_ROOT, or ask the operator to add its folder to DATASET_PATHS_ALLOWED."
        )


@dataclass(frozen=True)
class DatasetSource:
    """Where a dataset's files come from: a folder (or segmenter checkpoint) path, or an uploaded zip and its size."""

    path: str | Path = ""
    archive: BinaryIO | None = None
    archive_size: int | None = None


def dataset_register(
    *,
    project: Project,
    name: str,
    kind: str,
    source: DatasetSource | None = None,
    image_size: int | None = None,
    description: str = "",
    created_by: User | None = None,
    any_path: bool = False,
) -> ProbeDataset:
    """Register a probe dataset from a folder path or an uploaded zip; reads its concept vocabulary.

    A path (a folder, or a segmenter's checkpoint) must lie under DATASETS_ROOT or a folder of
    DATASET_PATHS_ALLOWED (after following links), unless `any_path` (the operator's management
    command): a requester must not make the server read, show pictures of, or say whether it has,
    any file it can reach.

    A zip is extracted to a temporary folder, checked, opened by the engine, and only then
    moved to the project's upload folder, DATASETS_ROOT/projects/<project id>/<name>; any refusal
    removes it again. Another project's upload folder is never a path a requester may register.
    """
    source = source or DatasetSource()
    path, archive, archive_size = source.path, source.archive, source.archive_size
    name = (name or "").strip()
    if not name:
        raise DissectionError("A dataset needs a name.")
    if kind not in ProbeDataset.Kind.values:
        raise DissectionError(f"Unknown dataset kind {kind!r}; choose one of {', '.join(ProbeDataset.Kind.values)}.")
    if ProbeDataset.objects.filter(project=project, name=name).exists():
        raise DissectionError(f"A dataset named {name!r} exists already; choose another name.")
    # Every kind, before anything reads the path: a refusal that came after an existence check would
    # tell a requester whether any file on the server exists.
    if str(path) and not any_path:
        _check_dataset_path(_dataset_path(path), project)
    if kind == ProbeDataset.Kind.SEGMENTER:  # a checkpoint, not a folder: `archive` is the uploaded .pt
        return segmenter_register(project=project, name=name, path=path, upload=archive, upload_size=archive_size,
                                  description=description, created_by=created_by)
    if (archive is None) == (not str(path)):
        raise DissectionError("Give either a dataset folder path or a zip upload (one of the two).")

    datasets_root = Path(settings.DATASETS_ROOT)
    staged: Path | None = None
    final: Path | None = None
    try:
        if archive is not None:
            try:
                staged = extract_dataset_zip(archive, size=archive_size or 0)
            except UploadError as exc:
                raise DissectionError(str(exc)) from None
            root = staged
        else:
            root = _dataset_path(path)
            if not root.is_dir():
                raise DissectionError(f"The dataset folder {root} does not exist.")
        engine_dataset = _open_engine_dataset(kind, root, image_size)
        meta = _read_meta(root)
        if kind == ProbeDataset.Kind.MIXTURE and meta.get("format") != "unitcrowd-mixture":
            raise DissectionError(f"{root} is not a mixture-of-digits dataset (its meta.json lacks format "
                                  f"'unitcrowd-mixture').")

        stored_path = str(path)
        if staged is not None:
            relative = project_upload_dir(project.pk) / (slugify(name) or "dataset")
            final = datasets_root / relative
            if final.exists():
                raise DissectionError(f"The folder {relative} exists already; choose another dataset name.")
            final.parent.mkdir(parents=True, exist_ok=True)
            staged.rename(final)
            staged, stored_path = None, relative.as_posix()
        with transaction.atomic():
            dataset = ProbeDataset.objects.create(
                project=project, name=name, kind=kind, path=stored_path, image_size=image_size,
                num_images=len(engine_dataset),
                categories=list(engine_dataset.categories), meta=meta, description=description, created_by=created_by,
            )
            Concept.objects.bulk_create(
                Concept(dataset=dataset, number=c.number, name=c.name, category=c.category)
                for c in engine_dataset.concepts
            )
            activity_record(project=project, actor=created_by, verb=Activity.Verb.REGISTERED,
                            summary=f"dataset {dataset.name} ({kind}, {dataset.num_images} images)")
    except BaseException:
        if staged is not None:
            shutil.rmtree(staged, ignore_errors=True)
        if (
            final is not None
            and final.exists()
            and not ProbeDataset.objects.filter(project=project, name=name).exists()
        ):
            shutil.rmtree(final, ignore_errors=True)
        raise
    return dataset


# -- dissection jobs ----------------------------------------------------------------------------


@dataclass(frozen=True)
class JobSettings:
    """A dissection job's settings: layers, top images, quantile, IoU rule, batching and a generator's samples."""

    layers: Sequence[str]
    top_k: int = 15
    quantile: float = 0.005
    iou_rule: str = "lite"
    batch_size: int = 32
    shards: int = 1
    samples: int | None = None
    sample_seed: int = 0
    token_grid: str = ""  # "HxW" for token layers whose tokens are no square grid


def job_create(
    *,
    network: Network,
    dataset: ProbeDataset,
    options: JobSettings,
    created_by: User | None = None,
) -> DissectionJob:
    """A pending job. Its layers are checked against the network's shape probe first (a name that
    is not a layer, or a layer that is not a map, is refused before any row exists).

    A generator's job dissects `options.samples` generated images (default 1000) of z stream
    `options.sample_seed`, labelled by its dataset's segmenter.
    """
    params = _job_params(dataset=dataset, options=options)
    if dataset.project_id != network.project_id:
        raise DissectionError("The network and the dataset belong to different projects; pick both from one project.")
    _check_layers(network, params["layers"], params["token_grid"])
    samples = job_kind_check(network=network, dataset=dataset, shards=options.shards, samples=options.samples)
    sample_seed = options.sample_seed
    if not 0 <= int(sample_seed) <= 2**31 - 1:
        raise DissectionError("sample_seed must be between 0 and 2147483647.")
    with transaction.atomic():
        job = DissectionJob.objects.create(project_id=network.project_id, network=network, dataset=dataset,
                                           created_by=created_by,
                                           kind=network.kind, samples=samples, sample_seed=int(sample_seed), **params)
        activity_record(project=job.project_id, actor=created_by, verb=Activity.Verb.DISSECTED,
                        summary=f"job {job.pk}: {network.name} on {dataset.name}, layers {', '.join(job.layers)}")
        return job


# A job that never ran or failed may be changed or removed; one that runs, succeeded or has HITs may not.
EDITABLE_STATUSES = ("pending", "failed")


def _editable_job(job: DissectionJob, doing: str) -> DissectionJob:
    job = DissectionJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in EDITABLE_STATUSES:
        raise DissectionError(f"Job {job.pk} is {job.status}; only a pending or failed job can be {doing}.")
    if job_has_hits(job):
        raise DissectionError(f"Job {job.pk} has published HITs; it cannot be {doing}.")
    return job


def job_update(*, job: DissectionJob, network: Network, dataset: ProbeDataset, options: JobSettings) -> DissectionJob:
    """Change a pending or failed job's settings (a wrong layer name, too large a batch) before running it again.

    A job keeps its own samples and sample_seed: `options.samples` and `options.sample_seed` are not used here."""
    params = _job_params(dataset=dataset, options=options)
    if network.project_id != job.project_id or dataset.project_id != job.project_id:
        raise DissectionError("Pick the network and the dataset from the job's project.")
    _check_layers(network, params["layers"], params["token_grid"])
    with transaction.atomic():
        job = _editable_job(job, "edited")
        params["kind"] = network.kind
        params["samples"] = job_kind_check(network=network, dataset=dataset, shards=options.shards,
                                           samples=job.samples if network.kind == Network.Kind.GENERATOR else None)
        for field, value in {"network": network, "dataset": dataset, **params}.items():
            setattr(job, field, value)
        job.save(update_fields=["network", "dataset", *params])
    return job


def job_delete(*, job: DissectionJob) -> None:
    """Remove a pending or failed job, its partial rows and, once that is committed, its files."""
    with transaction.atomic():
        job = _editable_job(job, "deleted")
        media = Path(settings.MEDIA_ROOT).resolve()
        folder = (media / job.output_dir).resolve() if job.output_dir else None
        job.delete()
        if folder is not None and folder != media and media in folder.parents:
            transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


def _check_layers(network: Network, names: list[str], token_grid: str = "") -> None:
    problem = layer_name_problem(network.architecture, names, input_size=network.input_size,
                                 checkpoint=network.checkpoint.path if network.checkpoint else None,
                                 token_grid=token_grid)
    if problem:
        raise DissectionError(problem)


def token_grid_text(text: str | None) -> str:
    """A stated token grid as the job stores it ("14x20"), or "" for none; a malformed one is refused."""
    from tasks.engine.capture import parse_grid
    from tasks.engine.errors import EngineError

    try:
        grid = parse_grid(text)
    except EngineError as exc:
        raise DissectionError(f"{exc}"[0].upper() + f"{exc}"[1:] + ".") from None
    return f"{grid[0]}x{grid[1]}" if grid else ""


def _job_params(*, dataset: ProbeDataset, options: JobSettings) -> dict:
    """A job's settings, checked (DissectionError says what is wrong)."""
    layers, top_k, quantile, iou_rule = options.layers, options.top_k, options.quantile, options.iou_rule
    batch_size, shards = options.batch_size, options.shards
    names = []
    for raw in layers:
        for part in str(raw).replace(",", " ").split():
            if part not in names:
                names.append(part)
    if not names:
        raise DissectionError("Name at least one layer to dissect, e.g. conv3 or layer4.")
    if not 1 <= int(top_k) <= MAX_TOP_K:
        raise DissectionError(f"top_k must be between 1 and {MAX_TOP_K}.")
    if not 0 < float(quantile) < 0.5:
        raise DissectionError("quantile is the top fraction of activations (e.g. 0.005); it must be between 0 and 0.5.")
    if iou_rule not in IOU_RULES:
        raise DissectionError(f"iou_rule must be one of {', '.join(IOU_RULES)}.")
    if not 1 <= int(batch_size) <= 4096:
        raise DissectionError("batch_size must be between 1 and 4096.")
    if not 1 <= int(shards) <= MAX_SHARDS:
        raise DissectionError(f"shards must be between 1 and {MAX_SHARDS}.")
    if dataset.num_images and int(shards) > dataset.num_images:
        raise DissectionError(f"shards ({shards}) cannot exceed the dataset's {dataset.num_images} images.")
    return {"layers": names, "top_k": int(top_k), "quantile": float(quantile), "iou_rule": iou_rule,
            "batch_size": int(batch_size), "shards": int(shards), "token_grid": token_grid_text(options.token_grid)}


def job_has_hits(job: DissectionJob) -> bool:
    # Through the reverse name the crowd app gives its HITs, so this app needs no import of the crowd's.
    return Unit.objects.filter(layer__job=job, hits__isnull=False).exists()


def _run_in_background(job_id: int, attempt: int) -> None:
    """Eager mode only (no broker): run the job in a thread so the page that started it returns."""
    def target() -> None:
        try:
            enqueue("tasks.jobs.dissect_job", job_id, attempt)  # eager: runs here, in this thread
        finally:
            connection.close()

    threading.Thread(target=target, name=f"dissection-job-{job_id}", daemon=True).start()


def job_start(*, job: DissectionJob, background: bool | None = None) -> DissectionJob:
    """Queue the job (again). A re-run replaces its results; refused while it runs or once HITs exist.

    `background` (eager mode only): run in a thread instead of inside this call; defaults to
    settings.UNITCROWD_EAGER_JOBS_IN_THREAD. With a broker the job always goes to the workers.
    """
    with transaction.atomic():
        # Lock the row: two clicks on "start" must not queue the job twice.
        job = DissectionJob.objects.select_for_update().get(pk=job.pk)
        if job.status in (DissectionJob.Status.QUEUED, DissectionJob.Status.RUNNING):
            raise DissectionError(f"Job {job.pk} is {job.status} already; wait for it to finish.")
        if job_has_hits(job):
            raise DissectionError(
                f"Job {job.pk} has published HITs; re-running it would delete the crowd's work. Create a new job "
                f"instead."
            )
        job.status = DissectionJob.Status.QUEUED
        job.stage = "queued"
        job.progress = 0.0
        job.error_message = ""
        job.attempts += 1
        job.started_at = job.finished_at = None
        job.save(update_fields=["status", "stage", "progress", "error_message", "attempts", "started_at",
                                "finished_at"])
        job_id, attempt = job.pk, job.attempts

        eager = settings.CELERY_TASK_ALWAYS_EAGER
        in_thread = settings.UNITCROWD_EAGER_JOBS_IN_THREAD if background is None else background
        if eager and in_thread:
            transaction.on_commit(lambda: _run_in_background(job_id, attempt))
        else:
            transaction.on_commit(lambda: enqueue("tasks.jobs.dissect_job", job_id, attempt))
    job.refresh_from_db()
    return job


# -- projects -----------------------------------------------------------------------------------


def media_remove_on_commit(relpaths: Sequence[str]) -> None:
    """Remove these files or folders under MEDIA_ROOT once the transaction commits (never outside it)."""
    media = Path(settings.MEDIA_ROOT).resolve()
    targets = []
    for rel in relpaths:
        target = (media / rel).resolve() if rel else None
        if target is not None and target != media and media in target.parents:
            targets.append(target)

    def remove() -> None:
        for target in targets:
            if target.is_dir():
                shutil.rmtree(target, ignore_errors=True)
            else:
                target.unlink(missing_ok=True)

    if targets:
        transaction.on_commit(remove)


def project_rows_delete(*, project, **_) -> None:
    """A project is being deleted (projects.signals.project_deleting): its jobs go first, since a job
    protects its network and dataset from the cascade, and its files go after the commit (its
    uploaded datasets and segmenters too: the folders registered by path are the operator's)."""
    uploads = Path(settings.DATASETS_ROOT) / project_upload_dir(project.pk)
    transaction.on_commit(lambda: shutil.rmtree(uploads, ignore_errors=True))
    media_remove_on_commit([
        *DissectionJob.objects.filter(project=project).exclude(output_dir="").values_list("output_dir", flat=True),
        *Network.objects.filter(project=project).exclude(checkpoint="").values_list("checkpoint", flat=True),
    ])
    DissectionJob.objects.filter(project=project).delete()
