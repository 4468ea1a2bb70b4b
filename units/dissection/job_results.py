"""Storing what the engine found: layers, units, exemplars and IoU scores, replaced atomically.

A job's results are replaced as a whole in one transaction: a re-run or a redelivered task
leaves exactly one set of rows, never a mix of two runs and never duplicates.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from .models import Concept, DissectionJob, Exemplar, Layer, Unit, UnitConceptScore

TOP_CONCEPTS_STORED = 5
# Mixture gold rule: a unit whose best IoU label is a digit with IoU >= this value is a gold unit
# (its concept is known for sure); the crowd app uses gold units for qualification and gold mixing.
GOLD_MIN_IOU = 0.10


@dataclass
class SentinelPick:
    """A low-activation image shown among a unit's exemplars as a quality check (ICLR 2015)."""

    image_index: int
    image_name: str
    score: float
    picture: str  # relative to the job's output folder
    plain: str


def job_dir(job_id: int) -> Path:
    return Path(settings.MEDIA_ROOT) / "jobs" / str(job_id)


def attempt_dir_rel(job_id: int, attempt: int) -> str:
    return f"jobs/{job_id}/a{attempt}"


def _rel(out_rel: str, path: str | None) -> str:
    return f"{out_rel}/{path}" if path else ""


def _gold_for(label: str, score: float, dataset_kind: str) -> tuple[bool, str, str]:
    if dataset_kind == "mixture" and label.isdigit() and score >= GOLD_MIN_IOU:
        return True, label, "object"
    return False, "", ""


def _unit_rows(job: DissectionJob, layer: Layer, lr, out_rel: str, sentinels: dict | None,
               image_name) -> tuple[list, list]:
    units, exemplars = [], []
    scores = np.asarray(lr.topk_scores, dtype=float)
    indices = np.asarray(lr.topk_indices)
    for u in range(lr.num_units):
        label = lr.labels[u] if lr.labels else None
        label_name = label.label if label else ""
        score = float(label.score) if label else 0.0
        is_gold, gold_word, gold_category = _gold_for(label_name, score, job.dataset.kind)
        max_act = float(scores[u, 0]) if scores.shape[1] else 0.0
        units.append(Unit(
            layer=layer, index=u, threshold=float(lr.thresholds[u]), max_activation=max_act,
            iou_label=label_name, iou_category=label.category if label else "", iou_score=score,
            strip=_rel(out_rel, lr.strips.get(u)), is_gold=is_gold, gold_word=gold_word, gold_category=gold_category,
        ))
        pictures = lr.exemplars.get(u, [])
        plains = lr.plain.get(u, [])
        for rank in range(indices.shape[1]):
            index = int(indices[u, rank])
            if index < 0:  # fewer images than k
                continue
            exemplars.append((u, Exemplar(
                kind=Exemplar.Kind.TOP, rank=rank, image_index=index, image_name=image_name(index),
                score=float(scores[u, rank]),
                picture=_rel(out_rel, pictures[rank] if rank < len(pictures) else None),
                plain=_rel(out_rel, plains[rank] if rank < len(plains) else None),
            )))
        for rank, pick in enumerate((sentinels or {}).get(u, [])):
            exemplars.append((u, Exemplar(
                kind=Exemplar.Kind.SENTINEL, rank=rank, image_index=pick.image_index, image_name=pick.image_name,
                score=pick.score, picture=_rel(out_rel, pick.picture), plain=_rel(out_rel, pick.plain),
            )))
    return units, exemplars


def job_store_results(
    *,
    job_id: int,
    attempt: int,
    result,
    image_name,
    concept_numbers: Sequence[int],
    out_rel: str,
    sentinels: dict[str, dict[int, list[SentinelPick]]] | None = None,
) -> bool:
    """Replace the job's layers/units/exemplars/scores with `result` and mark it succeeded.

    `image_name(i)` names dataset image i; `concept_numbers[j]` is the label number of the
    engine's IoU column j. Returns False (and writes nothing) for a stale or finished attempt.
    """
    with transaction.atomic():
        # The row lock orders this against a concurrent re-run or a second delivery of this task.
        job = (
            DissectionJob.objects.select_for_update().select_related("dataset")
            .filter(pk=job_id, attempts=attempt, status=DissectionJob.Status.RUNNING).first()
        )
        if job is None:
            return False
        concept_ids = dict(Concept.objects.filter(dataset=job.dataset).values_list("number", "id"))
        Layer.objects.filter(job=job).delete()  # cascades to units, exemplars and scores
        for name, lr in result.layers.items():
            layer = Layer.objects.create(job=job, name=name, num_units=lr.num_units, summary=_jsonable(lr.summary))
            units, exemplars = _unit_rows(job, layer, lr, out_rel, (sentinels or {}).get(name), image_name)
            Unit.objects.bulk_create(units)
            # Read the rows back rather than rely on bulk_create returning primary keys.
            created = {u.index: u for u in Unit.objects.filter(layer=layer)}
            for unit_index, ex in exemplars:
                ex.unit = created[unit_index]
            Exemplar.objects.bulk_create([ex for _, ex in exemplars])
            _equalise_picture_sizes(exemplars)
            UnitConceptScore.objects.bulk_create(_concept_scores(lr, created, concept_numbers, concept_ids))
        job.status = DissectionJob.Status.SUCCEEDED
        job.stage = "done"
        job.progress = 1.0
        job.finished_at = timezone.now()
        job.output_dir = out_rel
        job.timings = _jsonable(dict(result.timings)) | {"skipped_images": list(result.skipped_images)[:1000]}
        job.save(update_fields=["status", "stage", "progress", "finished_at", "output_dir", "timings"])
    transaction.on_commit(lambda: remove_other_attempts(job_id, keep=out_rel))
    return True


def _equalise_picture_sizes(exemplars: list[tuple[int, Exemplar]]) -> None:
    """A unit's HIT shows its top images and sentinels together: their highlighted pictures are padded
    to one size, or the sentinels (nearly nothing highlighted, smaller files) would stand out by it."""
    from tasks.engine.padding import pad_to_common_size

    media = Path(settings.MEDIA_ROOT)
    per_unit: dict[int, list[Path]] = {}
    for unit_index, ex in exemplars:
        if ex.picture:
            per_unit.setdefault(unit_index, []).append(media / ex.picture)
    for paths in per_unit.values():
        pad_to_common_size(p for p in paths if p.is_file())


def _concept_scores(lr, units: dict[int, Unit], concept_numbers: Sequence[int], concept_ids: dict[int, int]) -> list:
    if lr.iou is None:
        return []
    iou = np.asarray(lr.iou, dtype=float)
    rows = []
    for u, unit in units.items():
        order = np.argsort(-iou[u], kind="stable")[:TOP_CONCEPTS_STORED]
        rank = 0
        for j in order:
            if iou[u, j] <= 0:
                break
            concept_id = concept_ids.get(int(concept_numbers[j]))
            if concept_id is None:
                continue
            rows.append(UnitConceptScore(unit=unit, concept_id=concept_id, rank=rank, iou=float(iou[u, j])))
            rank += 1
    return rows


def _jsonable(value: Any) -> Any:
    """Summaries and timings may hold NumPy numbers; JSONField needs plain Python."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def remove_other_attempts(job_id: int, *, keep: str) -> None:
    """Pictures of earlier attempts are no longer referenced once the new rows are committed."""
    root = job_dir(job_id)
    keep_path = Path(settings.MEDIA_ROOT) / keep
    if not root.is_dir():
        return
    for child in root.iterdir():
        if child.is_dir() and child.name.startswith("a") and child != keep_path:
            shutil.rmtree(child, ignore_errors=True)
