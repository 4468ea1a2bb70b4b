"""Celery tasks of dissection jobs (routed to the `gpu` queue). Ids in; rows are read inside.

Flow: `dissect_job` claims the job. One shard: it runs the whole job itself. Several shards:
it fans out `collect_stats_shard` x N; the shard that completes the set (a conditional UPDATE
of the job's stage decides which) enqueues `merge_stats`, which fans out
`collect_counts_shard` x N; the last of those enqueues `finalize_job`. No result backend is
needed, and every step is idempotent (shard files are kept; results are replaced in one
transaction), so `acks_late` redelivery after a lost worker is safe.

Errors: an `EngineError` (bad layer, dataset, checkpoint) fails the job with the engine's
message; database/broker hiccups are retried with backoff; anything else fails the job with
a short message (the traceback goes to the worker log).
"""
from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import DatabaseError, InterfaceError, OperationalError

log = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, ConnectionError, TimeoutError)


class JobTask(Task):
    """Reports the final failure of a step on the job row (after retries are spent)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from units.dissection import job_state

        job_id, attempt = args[0], args[1]
        message = _user_message(exc)
        log.error("dissection job %s (attempt %s) failed in %s: %s", job_id, attempt, self.name, message)
        try:
            job_state.job_fail(job_id=job_id, attempt=attempt, message=message)
        except DatabaseError:  # the database is what failed; nothing more we can record
            log.exception("could not mark job %s failed", job_id)


def _user_message(exc: BaseException) -> str:
    from tasks.engine.errors import EngineError

    if isinstance(exc, EngineError):
        return str(exc)
    text = str(exc)
    if "out of memory" in text.lower():
        return "The worker ran out of memory; lower the job's batch size or use fewer layers per job."
    if isinstance(exc, TRANSIENT_ERRORS):
        return f"A service was unavailable too long ({type(exc).__name__}: {text[:300]}); start the job again."
    return f"Internal error ({type(exc).__name__}: {text[:300]}); see the worker log."


_TASK_OPTIONS = dict(
    base=JobTask,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)


def _guard(step, *args):
    """Run one step; a stale attempt (re-run/failed meanwhile) or an engine error ends it here."""
    from tasks.engine.errors import EngineError
    from units.dissection import job_state
    from units.dissection.runner import StaleAttempt

    job_id, attempt = args[0], args[1]
    try:
        return step(*args)
    except StaleAttempt:
        log.info("job %s attempt %s is no longer live; %s skipped", job_id, attempt, step.__name__)
        return None
    except EngineError as exc:
        job_state.job_fail(job_id=job_id, attempt=attempt, message=str(exc))
        return None


@shared_task(name="tasks.jobs.dissect_job", **_TASK_OPTIONS)
def dissect_job(job_id: int, attempt: int) -> None:
    from units.dissection import job_state, runner
    from units.dissection.models import DissectionJob

    if not job_state.job_mark_running(job_id=job_id, attempt=attempt):
        return  # re-run, failed or finished already
    kind, shards = DissectionJob.objects.values_list("kind", "shards").get(pk=job_id)
    if kind == DissectionJob.Kind.GENERATOR:  # GAN Dissection: the generator's own samples, one worker
        from units.dissection import gan_runner

        _guard(gan_runner.run_generator, job_id, attempt)
        return
    if shards <= 1:
        _guard(runner.run_whole, job_id, attempt)
        return
    # Check the layers etc. once, before fanning out, so a bad layer fails fast with one message.
    if _guard(runner.load_context, job_id, attempt) is None:
        return
    job_state.job_set_stage(job_id=job_id, attempt=attempt, stage=job_state.STAGE_STATS, progress=0.0)
    for shard in range(shards):
        collect_stats_shard.delay(job_id, attempt, shard)


@shared_task(name="tasks.jobs.collect_stats_shard", **_TASK_OPTIONS)
def collect_stats_shard(job_id: int, attempt: int, shard: int) -> None:
    from units.dissection import runner

    if _guard(runner.run_collect_stats, job_id, attempt, shard):
        merge_stats.delay(job_id, attempt)


@shared_task(name="tasks.jobs.merge_stats", **_TASK_OPTIONS)
def merge_stats(job_id: int, attempt: int) -> None:
    from units.dissection import job_state, runner
    from units.dissection.models import DissectionJob

    if not _guard(runner.run_merge_stats, job_id, attempt) or not job_state.job_is_live(job_id=job_id, attempt=attempt):
        return
    # Enqueued again by a redelivered merge: shards whose counts file exists return at once.
    shards = DissectionJob.objects.values_list("shards", flat=True).get(pk=job_id)
    for shard in range(shards):
        collect_counts_shard.delay(job_id, attempt, shard)


@shared_task(name="tasks.jobs.collect_counts_shard", **_TASK_OPTIONS)
def collect_counts_shard(job_id: int, attempt: int, shard: int) -> None:
    from units.dissection import runner

    if _guard(runner.run_collect_counts, job_id, attempt, shard):
        finalize_job.delay(job_id, attempt)


@shared_task(name="tasks.jobs.finalize_job", **_TASK_OPTIONS)
def finalize_job(job_id: int, attempt: int) -> None:
    from units.dissection import runner

    _guard(runner.run_finalize, job_id, attempt)
