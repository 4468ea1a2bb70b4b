"""A real `celery worker` process against Redis and PostgreSQL runs dissection jobs.

The worker reads pytest-django's test database (its name is passed in DATABASE_URL), so the
tests use transaction=True: rows must be committed for another process to see them. The
broker is the CELERY_BROKER_URL's server with a database number of its own (15, or
UNITCROWD_TEST_BROKER_DB), so no other test's worker takes these tasks; two runs on one machine
at once need different numbers, since each flushes its own.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from django.db import connection

from tests.conftest import need_service
from tests.factories import make_registered_pipeline
from units.dissection.models import DissectionJob, Exemplar, Unit

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
BROKER_DB = int(os.environ.get("UNITCROWD_TEST_BROKER_DB", "15"))
FINISHED = (DissectionJob.Status.SUCCEEDED, DissectionJob.Status.FAILED)


def _redis_url() -> str | None:
    url = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith(("redis://", "rediss://")):
        return None
    parts = urlsplit(url)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{BROKER_DB}", "", ""))
    try:
        import redis

        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.flushdb()  # tasks left by an earlier, interrupted run
    except Exception:
        return None
    return url


def _test_database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="")
    if s.get("PASSWORD"):
        auth += ":" + quote(s["PASSWORD"], safe="")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def services(settings, tmp_path):
    need_service(connection.vendor == "postgresql", "PostgreSQL (DATABASE_URL=postgres://...)")
    broker = _redis_url()
    need_service(broker is not None, "Redis (CELERY_BROKER_URL=redis://...)")
    from annotate_site.celery import app

    # Read before touching Django's settings: Celery looks its CELERY_* values up there live.
    keys = ("task_always_eager", "broker_url", "broker_write_url", "broker_read_url")
    old = {key: app.conf[key] for key in keys}
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.MEDIA_ROOT = tmp_path / "media"
    # broker_write_url too: Celery lets the CELERY_BROKER_URL environment variable win over broker_url.
    app.conf.update(task_always_eager=False, broker_url=broker, broker_write_url=broker, broker_read_url=broker)
    _reset_connections(app)
    yield broker
    app.conf.update(old)
    _reset_connections(app)
    assert app.conf.task_always_eager, "later tests must run tasks in-process again"


def _reset_connections(app) -> None:
    """Drop pooled broker connections so the next send uses the broker URL set now."""
    from kombu import pools

    pools.reset()  # kombu keeps connection pools per broker URL, process-wide
    app._pool = None
    app.amqp._producer_pool = None


def start_worker(broker: str, tmp_path: Path, name: str, **extra_env: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "PYTEST"))}
    env.update(
        DJANGO_SETTINGS_MODULE="annotate_site.settings", DEBUG="0", SECRET_KEY="integration-test-secret",
        DATABASE_URL=_test_database_url(), CELERY_BROKER_URL=broker, MEDIA_ROOT=str(tmp_path / "media"),
        UNITCROWD_VAR_DIR=str(tmp_path / "var"), UNITCROWD_DEVICE="cpu", **extra_env,
    )
    log = open(tmp_path / f"{name}.log", "w")  # noqa: SIM115  (the child process writes it; closed with it)
    # A session of its own: killing the group kills the pool child that runs the task too.
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "annotate_site", "worker", "-Q", "gpu,default", "--concurrency", "1",
         "-P", "prefork", "--loglevel", "INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )


def stop(worker: subprocess.Popen) -> None:
    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)


def wait_for(job: DissectionJob, condition, timeout: float, tmp_path: Path) -> DissectionJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job.refresh_from_db()
        if condition(job):
            return job
        time.sleep(0.2)
    logs = "\n".join(p.read_text()[-3000:] for p in tmp_path.glob("*.log"))
    pytest.fail(f"job {job.pk} stayed {job.status} / {job.stage} / {job.progress:.2f}\n{logs}")


def test_a_worker_process_runs_a_dissection_job_to_the_end(services, tiny_mixture_dir, tmp_path):
    from units.dissection.services import job_start

    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv1", "conv3"], top_k=3)
    worker = start_worker(services, tmp_path, "w1")
    try:
        job_start(job=job)
        job = wait_for(job, lambda j: j.status in FINISHED, 300, tmp_path)
    finally:
        stop(worker)
    assert job.status == "succeeded", job.error_message
    assert Unit.objects.filter(layer__job=job).count() == 20
    assert Exemplar.objects.filter(unit__layer__job=job, kind="top").count() == 20 * 3


def test_a_task_whose_worker_is_killed_is_redelivered_and_completes_without_duplicates(
    services, tiny_mixture_dir, tmp_path
):
    from units.dissection.services import job_start

    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv2", "conv3"], top_k=3)
    visibility = "10"  # seconds before Redis hands an unacknowledged task to another worker
    first = start_worker(services, tmp_path, "doomed", CELERY_VISIBILITY_TIMEOUT=visibility,
                         UNITCROWD_JOB_STEP_DELAY="1.0")
    try:
        job_start(job=job)
        job = wait_for(job, lambda j: j.status == "running" and j.progress > 0, 300, tmp_path)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool child, mid-task
        first.wait(10)
    finally:
        stop(first)
    job.refresh_from_db()
    assert job.status == "running" and job.progress < 1.0
    time.sleep(int(visibility) + 1)
    second = start_worker(services, tmp_path, "rescuer", CELERY_VISIBILITY_TIMEOUT=visibility)
    try:
        job = wait_for(job, lambda j: j.status in FINISHED, 300, tmp_path)
    finally:
        stop(second)
    assert job.status == "succeeded", job.error_message
    assert job.attempts == 1  # the same attempt, delivered twice
    assert Unit.objects.filter(layer__job=job).count() == 30
    assert Exemplar.objects.filter(unit__layer__job=job, kind="top").count() == 30 * 3
    assert not any((tmp_path / "media" / job.output_dir).glob(".cache-*"))
