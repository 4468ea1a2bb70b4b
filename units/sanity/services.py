"""Writes of the sanity app: create and run a report, register its runs as jobs, publish them.

A run's network, validation dataset and dissection go through the platform's own services
(`network_register`, `dataset_register`, `job_create`, `job_store_results`), so the units of
a sanity run are ordinary units the crowd can label; the digit detectors are marked gold
so the crowd's words can be compared with the true digits.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate_site.celery import enqueue
from units.dissection.models import DissectionJob, Layer, Network, ProbeDataset, Unit
from units.projects.models import Project

from .errors import SanityError
from .models import SanityReport


logger = logging.getLogger(__name__)


MAX_SEEDS = 10


def report_out_dir(report: SanityReport) -> Path:
    """Absolute folder of a report's files (out_dir may be relative to MEDIA_ROOT)."""
    if not report.out_dir:
        return Path(settings.MEDIA_ROOT) / "sanity" / str(report.pk)
    path = Path(report.out_dir)
    return path if path.is_absolute() else Path(settings.MEDIA_ROOT) / path


def sanity_report_create(*, user=None, source: str = "digits", seeds: int = 3, quick: bool = False,
                         network: str = "mixturenet", out_dir: str | Path | None = None, config=None) -> SanityReport:
    """A pending report with its configuration checked; its files go under MEDIA_ROOT/sanity/<pk> by default.

    `config` (an engine SanityConfig) overrides source/seeds/quick when given (the command line passes one).
    """
    from tasks.engine.errors import EngineError
    from tasks.engine.sanity import SanityConfig

    source = ((config.source if config is not None else source) or "digits").strip()
    seeds = config.seeds if config is not None else seeds
    if source != "digits" and not (source.startswith("idx:") and len(source) > 4):
        raise SanityError(f"Unknown digit source {source!r}: use 'digits' or 'idx:PATH' (MNIST IDX files).")
    if source.startswith("idx:") and not Path(source[4:]).exists():
        raise SanityError(f"{source[4:]} does not exist; give the path of MNIST IDX files (or a folder of them).")
    if not 1 <= int(seeds) <= MAX_SEEDS:
        raise SanityError(f"Seeds must be between 1 and {MAX_SEEDS}.")
    if config is None:
        options = {"source": source, "seeds": int(seeds), "network": network or "mixturenet"}
        config = SanityConfig.for_run(quick=bool(quick), **options)
    source = config.source
    try:
        config.validate()
    except EngineError as exc:
        raise SanityError(str(exc)) from None
    with transaction.atomic():
        report = SanityReport.objects.create(params=asdict(config), source=source, created_by=user)
        report.out_dir = str(out_dir) if out_dir else f"sanity/{report.pk}"
        report.save(update_fields=["out_dir"])
    return report


def sanity_minutes(*, seeds: int | None = 3, quick: bool = False, network: str = "mixturenet") -> float | None:
    """About how long a report with these settings takes on two idle cores (the engine's estimate of the
    configuration sanity_report_create builds); seeds=None: the run's own default (full run of both
    networks: 2). None when the settings are not valid (the form says why)."""
    from tasks.engine.errors import EngineError
    from tasks.engine.sanity import SanityConfig, estimate_minutes

    options = {"network": network} | ({"seeds": int(seeds)} if seeds is not None else {})
    try:
        return estimate_minutes(SanityConfig.for_run(quick=bool(quick), **options), workers=2)
    except (EngineError, ValueError):
        return None


def sanity_report_start(*, report: SanityReport) -> None:
    """Hand a pending report to the workers (the `gpu` queue) once this transaction commits."""
    transaction.on_commit(lambda: enqueue("tasks.sanity.run_sanity_report", report.pk))


def _set(report_id: int, **fields) -> None:
    SanityReport.objects.filter(pk=report_id).update(**fields)


def sanity_report_run(*, report_id: int) -> SanityReport:
    """Run the experiment of a pending (or failed) report; idempotent for a finished one."""
    from tasks.engine.errors import EngineError
    from tasks.engine.sanity import SanityConfig, run_sanity

    with transaction.atomic():
        # Claim the row: a second delivery of the same task finds it running and leaves.
        claimed = SanityReport.objects.filter(
            pk=report_id, status__in=[SanityReport.Status.PENDING, SanityReport.Status.FAILED]
        ).update(status=SanityReport.Status.RUNNING, started_at=timezone.now(), stage="starting", progress=0.0,
                 error_message="")
    report = SanityReport.objects.get(pk=report_id)
    if not claimed:
        return report
    weights = {"data": (0.0, 0.1), "runs": (0.1, 0.95), "done": (0.95, 1.0)}

    def progress(stage: str, fraction: float) -> None:
        lo, hi = weights.get(stage, (0.0, 1.0))
        _set(report_id, stage=stage, progress=round(lo + (hi - lo) * fraction, 4))

    known = {f for f in SanityConfig.__dataclass_fields__}
    try:
        config = SanityConfig(**{k: v for k, v in report.params.items() if k in known})
        result = run_sanity(config, report_out_dir(report), progress=progress)
    except (EngineError, OSError, ValueError) as exc:  # bad input or data: the message says what to fix
        _set(report_id, status=SanityReport.Status.FAILED, error_message=str(exc), finished_at=timezone.now())
        return SanityReport.objects.get(pk=report_id)
    except Exception as exc:  # anything else must not leave the row "running" forever
        logger.exception("sanity report %s failed", report_id)
        _set(report_id, status=SanityReport.Status.FAILED, finished_at=timezone.now(),
             error_message=f"The experiment stopped with an unexpected error ({type(exc).__name__}: {exc}); see the "
                           f"worker log.")
        return SanityReport.objects.get(pk=report_id)
    _set(report_id, status=SanityReport.Status.SUCCEEDED, json=result, files=result.get("files", []),
         stage="done", progress=1.0, finished_at=timezone.now())
    return SanityReport.objects.get(pk=report_id)


# -- registering runs as dissection jobs ------------------------------------------------------------


class _Label:
    def __init__(self, label: str, category: str, score: float) -> None:
        self.label, self.category, self.score = label, category, score


class _LayerResult:
    """The engine's LayerResult rebuilt from run.json, as `job_store_results` reads it."""

    def __init__(self, name: str, layer: dict, digits: list[int]) -> None:
        units = layer["units"]
        self.name = name
        self.num_units = len(units)
        self.thresholds = np.asarray([u["threshold"] for u in units], dtype=float)
        self.topk_indices = np.asarray([u["top_images"] for u in units], dtype=np.int64)
        self.topk_scores = np.asarray([u["top_scores"] for u in units], dtype=float)
        self.iou = np.asarray([u["iou"] for u in units], dtype=float)  # columns in `digits` order
        self.labels = [_Label(u["iou_label"], "object", u["iou_score"]) for u in units]
        # Paths relative to the run's dissect folder (what the engine returns).
        self.exemplars = {u["unit"]: [_after_dissect(p) for p in u["exemplars"]] for u in units}
        self.plain = {u["unit"]: [_after_dissect(p) for p in u["plain"]] for u in units}
        self.strips = {u["unit"]: _after_dissect(u["strip"]) for u in units if u["strip"]}
        self.summary = {"line": layer.get("summary_line", ""), "source": "sanity check"}


class _Result:
    def __init__(self, run: dict) -> None:
        self.layers = {name: _LayerResult(name, L, run["digits"]) for name, L in run["layers"].items()}
        self.timings = dict(run.get("timings", {}))
        self.skipped_images: list[str] = []


def _after_dissect(path: str) -> str:
    parts = Path(path).parts
    return str(Path(*parts[parts.index("dissect") + 1 :])) if "dissect" in parts else path


def _media_rel(report: SanityReport, rel_in_report: str) -> str:
    """Path relative to MEDIA_ROOT of a report file, copying the folder there when the report lives elsewhere."""
    root = report_out_dir(report)
    src = root / rel_in_report
    media = Path(settings.MEDIA_ROOT).resolve()
    try:
        return str(src.resolve().relative_to(media))
    except ValueError:
        dest = media / "sanity" / f"report{report.pk}" / rel_in_report
        if not dest.exists():
            shutil.copytree(src, dest)
        return str(dest.relative_to(media))


def _find_run(report: SanityReport, run_id: str) -> dict:
    for run in report.json.get("runs", []):
        if run["id"] == run_id:
            return run
    raise SanityError(f"Report {report.pk} has no run {run_id!r}; choose one of its runs.")


def sanity_run_register(*, project: Project, report: SanityReport, run_id: str, user=None) -> DissectionJob:
    """The run's network, validation set and dissection as rows of `project` (a succeeded job)."""
    from units.dissection.job_results import job_store_results
    from units.dissection.services import (
        DatasetSource,
        DissectionError,
        JobSettings,
        dataset_register,
        job_create,
        network_register,
    )

    if report.status != SanityReport.Status.SUCCEEDED:
        raise SanityError("The report has not finished; register its runs once it has succeeded.")
    run = _find_run(report, run_id)
    existing = report.jobs.filter(project=project, network__name=_network_name(report, run_id)).first()
    if existing is not None:
        return existing
    root = report_out_dir(report)
    dissect_rel = _media_rel(report, run["dissect_dir"])
    try:
        network = Network.objects.filter(
            project=project, name=_network_name(report, run_id)
        ).first() or network_register(
            project=project,
            name=_network_name(report, run_id),
            architecture="mixturenet",
            checkpoint=root / run["checkpoint"],
            description=f"Sanity report {report.pk}, run {run_id} ({run['variant']}, seed {run['seed']}).",
            created_by=user,
        )
        data_name = f"sanity{report.pk}-{Path(run['val_dir']).name}"
        dataset = ProbeDataset.objects.filter(project=project, name=data_name).first() or dataset_register(
            project=project,
            name=data_name,
            kind=ProbeDataset.Kind.MIXTURE,
            source=DatasetSource(path=str((root / run["val_dir"]).resolve())),
            description=f"Validation set of sanity report {report.pk}.",
            created_by=user,
            any_path=True,  # the report's own folder, written by the server, not a path a user typed
        )
        top_k = len(next(iter(run["layers"].values()))["units"][0]["top_images"])
        job = job_create(network=network, dataset=dataset, options=JobSettings(list(run["layers"]), top_k=top_k),
                         created_by=user)
    except DissectionError as exc:
        raise SanityError(str(exc)) from None
    DissectionJob.objects.filter(pk=job.pk).update(status=DissectionJob.Status.RUNNING, attempts=1,
                                                   started_at=timezone.now())
    image_names = {}
    for L in run["layers"].values():
        for u in L["units"]:
            image_names.update(zip(u["top_images"], u["top_image_names"]))
    numbers = [d + 1 for d in run["digits"]]  # mixture label number = digit + 1
    stored = job_store_results(job_id=job.pk, attempt=1, result=_Result(run), image_name=image_names.__getitem__,
                               concept_numbers=numbers, out_rel=dissect_rel)
    if not stored:
        raise SanityError(f"Could not store the units of run {run_id}; try again.")
    _mark_gold(job, run)
    report.jobs.add(job)
    return DissectionJob.objects.get(pk=job.pk)


def _network_name(report: SanityReport, run_id: str) -> str:
    return f"sanity{report.pk}-{run_id}"


def _mark_gold(job: DissectionJob, run: dict) -> None:
    """Gold = the unit is a detector of a digit (AP at or above the report's cut-off); the rest are not."""
    with transaction.atomic():
        for layer in Layer.objects.filter(job=job):
            for u in run["layers"][layer.name]["units"]:
                word = str(u["best_digit"]) if u["detector"] else ""
                Unit.objects.filter(layer=layer, index=u["unit"]).update(
                    is_gold=bool(u["detector"]), gold_word=word, gold_category="object" if word else "",
                )


def sanity_runs_publish(*, project: Project, report: SanityReport, run_ids: list[str], layers: list[str], user=None,
                        assignments_per_hit: int = 3):
    """Register the runs (if not yet) and publish the chosen layers' units as HITs; returns the batch."""
    from units.crowd.errors import PublishError
    from units.crowd.publishing import PublishSettings, hit_publish  # the platform's; imported when used

    if not run_ids:
        raise SanityError("Choose at least one run to publish.")
    if not layers:
        raise SanityError("Choose at least one layer (conv1, conv2 or conv3) to publish.")
    jobs = [sanity_run_register(project=project, report=report, run_id=r, user=user) for r in run_ids]
    chosen = list(Layer.objects.filter(job__in=jobs, name__in=layers).select_related("job"))
    if not chosen:
        raise SanityError(f"The runs have no layer named {', '.join(layers)}.")
    try:
        settings = PublishSettings(assignments_per_hit=assignments_per_hit,
                                   name=f"sanity report {report.pk}: {', '.join(run_ids)} ({', '.join(layers)})")
        return hit_publish(layers=chosen, settings=settings, created_by=user)
    except PublishError as exc:
        raise SanityError(str(exc)) from None
