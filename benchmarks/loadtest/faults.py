"""The load benchmark's fault mode: `kill -9` of a gunicorn worker and of the Celery
worker in the middle of a run, then what must hold afterwards, read from the database.

Killing is done to real processes found from their pid files (gunicorn's master respawns its worker;
the Celery worker is started again by `--restart-worker`, as a supervisor or compose's restart policy
would). After the load: every assignment left open (requests cut by the kill, annotators stopped by
the end of the run) is freed once its deadline passes, and the layer's aggregation catches up with
every counted answer. Both are waited for, with a limit, and the times are printed.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from units.crowd.models import Annotation, Assignment, HitKind
from units.results.models import AggregationRun
from units.results.selectors import COUNTED_STATUSES


def children(pid: int) -> list[int]:
    """Direct children of a process (Linux /proc)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(p) for p in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def process_tree(pid: int) -> list[int]:
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children(p)
    return tree


def kill9(pids: list[int]) -> list[int]:
    killed = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            continue
    return killed


@dataclass
class FaultPlan:
    """Kill one gunicorn worker at `web_at` and the Celery worker (and its pool) at `worker_at`
    (seconds after the load starts); restart the worker with `restart` (a shell-free command line)."""

    web_pidfile: Path
    worker_pidfile: Path
    restart: str
    web_at: float
    worker_at: float
    events: list[str] = field(default_factory=list)

    def start(self, t0: float) -> threading.Thread:
        thread = threading.Thread(target=self._run, args=(t0,), daemon=True)
        thread.start()
        return thread

    def _pid(self, path: Path) -> int:
        return int(path.read_text().split()[0])

    def _run(self, t0: float) -> None:
        time.sleep(max(0.0, t0 + self.web_at - time.monotonic()))
        workers = children(self._pid(self.web_pidfile))
        if workers:
            victim = workers[0]
            kill9([victim])
            self.events.append(f"{time.monotonic() - t0:5.1f} s  kill -9 gunicorn worker {victim} "
                               f"(of {len(workers)}; the master starts another)")
        else:
            self.events.append("no gunicorn worker found to kill")
        time.sleep(max(0.0, t0 + self.worker_at - time.monotonic()))
        main = self._pid(self.worker_pidfile)
        killed = kill9(process_tree(main))
        self.events.append(f"{time.monotonic() - t0:5.1f} s  kill -9 Celery worker {main} and its pool "
                           f"({len(killed)} processes)")
        for _ in range(50):  # its pid file goes stale; the restart writes a new one
            if not Path(f"/proc/{main}").exists():
                break
            time.sleep(0.1)
        self.worker_pidfile.unlink(missing_ok=True)
        done = subprocess.run(shlex.split(self.restart), capture_output=True, text=True, timeout=120)
        self.events.append(f"{time.monotonic() - t0:5.1f} s  restarted the worker ({self.restart!r} -> exit "
                           f"{done.returncode})")


def _aggregated(layer_ids: list[int]) -> tuple[int, int]:
    """(counted answers, answers in each layer's newest successful run), summed over the layers."""
    counted = aggregated = 0
    for layer_id in layer_ids:
        counted += Annotation.objects.filter(
            assignment__hit__unit__layer_id=layer_id, assignment__status__in=COUNTED_STATUSES,
            assignment__hit__kind=HitKind.LABEL).count()
        run = (AggregationRun.objects.filter(layer_id=layer_id, status=AggregationRun.Status.SUCCEEDED)
               .order_by("-started_at").first())
        aggregated += run.n_annotations if run else 0
    return counted, aggregated


def wait_after(*, batch_ids: list[int], layer_ids: list[int], limit_s: float) -> dict[str, float | int | None]:
    """Wait (up to `limit_s`) until no assignment of the batches is left accepted past its deadline and
    each layer's newest aggregation run counted every counted answer; returns when each happened."""
    started = time.monotonic()
    freed_at = caught_up_at = None
    live = Assignment.objects.filter(hit__batch_id__in=batch_ids, status=Assignment.Status.ACCEPTED)
    while time.monotonic() - started < limit_s:
        if freed_at is None and not live.exists():
            freed_at = time.monotonic() - started
        counted, aggregated = _aggregated(layer_ids)
        if caught_up_at is None and aggregated == counted:
            caught_up_at = time.monotonic() - started
        if freed_at is not None and caught_up_at is not None:
            break
        time.sleep(2.0)
    counted, aggregated = _aggregated(layer_ids)
    return {"freed_after_s": freed_at, "caught_up_after_s": caught_up_at, "still_accepted": live.count(),
            "counted_answers": counted, "aggregated_answers": aggregated}
