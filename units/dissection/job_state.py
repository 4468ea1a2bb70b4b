"""A running job's row: claiming it, progress, the shard hand-offs, failure.

Every write is a conditional UPDATE keyed on (job id, attempt, status): a task of an older
attempt (the job was re-run) or of a job that already failed changes nothing, and shards
running at once add to the progress in SQL instead of overwriting each other.
"""
from __future__ import annotations

from django.db.models import F, QuerySet, Value
from django.db.models.functions import Least
from django.utils import timezone

from .models import DissectionJob

Status = DissectionJob.Status

# Stages of a sharded job, in order; the stage name is also the hand-off state between tasks.
STAGE_STATS = "collecting statistics"
STAGE_MERGE_STATS = "merging statistics"
STAGE_COUNTS = "counting IoU"
STAGE_MERGE_COUNTS = "merging counts"
STAGE_FINALIZE = "labelling and rendering"
STAGE_STORE = "storing results"
# Share of the progress bar each phase fills (statistics, counts, finalize + store).
PHASES = {STAGE_STATS: (0.0, 0.4), STAGE_COUNTS: (0.4, 0.85), STAGE_FINALIZE: (0.85, 0.98)}


def _live(job_id: int, attempt: int) -> QuerySet[DissectionJob]:
    return DissectionJob.objects.filter(pk=job_id, attempts=attempt, status__in=(Status.QUEUED, Status.RUNNING))


def job_mark_running(*, job_id: int, attempt: int) -> bool:
    """True when this attempt may run (it is queued, or running and being redelivered)."""
    now = timezone.now()
    claimed = _live(job_id, attempt).filter(status=Status.QUEUED).update(
        status=Status.RUNNING, stage="starting", started_at=now
    )
    return bool(claimed) or _live(job_id, attempt).exists()


def job_is_live(*, job_id: int, attempt: int) -> bool:
    return _live(job_id, attempt).exists()


def job_set_progress(*, job_id: int, attempt: int, stage: str, progress: float) -> None:
    """Whole-run progress: never moves the bar backwards."""
    progress = max(0.0, min(1.0, float(progress)))
    _live(job_id, attempt).filter(progress__lte=progress).update(stage=stage[:60], progress=progress)


def job_add_progress(*, job_id: int, attempt: int, stage: str, delta: float, cap: float) -> None:
    """Shard progress: add `delta` in SQL, capped at the phase's end (a retried shard may add twice)."""
    if delta <= 0:
        return
    _live(job_id, attempt).update(progress=Least(F("progress") + Value(float(delta)), Value(float(cap))))


def job_advance_stage(*, job_id: int, attempt: int, from_stage: str, to_stage: str) -> bool:
    """Move from one stage to the next exactly once: of all shards that see the phase complete,
    only the one whose UPDATE matched enqueues the next step."""
    return bool(_live(job_id, attempt).filter(stage=from_stage).update(stage=to_stage))


def job_set_stage(*, job_id: int, attempt: int, stage: str, progress: float | None = None) -> None:
    fields = {"stage": stage}
    if progress is not None:
        fields["progress"] = progress
    _live(job_id, attempt).update(**fields)


def job_current_stage(*, job_id: int) -> str:
    return DissectionJob.objects.filter(pk=job_id).values_list("stage", flat=True).first() or ""


def job_fail(*, job_id: int, attempt: int, message: str) -> bool:
    """Mark the attempt failed with a message for the user; a stale attempt changes nothing."""
    return bool(
        _live(job_id, attempt).update(
            status=Status.FAILED, stage="failed", error_message=message[:5000], finished_at=timezone.now()
        )
    )
