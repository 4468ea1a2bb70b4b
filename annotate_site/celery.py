"""The Celery application. Tasks live in the `tasks` package; GPU work goes to the `gpu` queue."""
import importlib
import os
import threading

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate_site.settings")

app = Celery("unitcrowd")
app.config_from_object("django.conf:settings", namespace="CELERY")


def enqueue(task_name: str, *args, **kwargs):
    """Send the task called `task_name` (e.g. "tasks.results.run_export") with these arguments.

    Services enqueue by name so that the apps never import the `tasks` package, which imports
    them: the dependency runs one way (tasks -> services). Without a broker the task runs at once
    (CELERY_TASK_ALWAYS_EAGER). Call it inside `transaction.on_commit` when it reads rows just written.
    """
    if task_name not in app.tasks:
        importlib.import_module(task_name.rpartition(".")[0])  # registers the module's tasks
    return app.tasks[task_name].delay(*args, **kwargs)


def enqueue_in(seconds: float, task_name: str, *args) -> None:
    """Send the task `seconds` from now. Without a broker a daemon timer thread of this process starts
    it then, so a delayed task never runs inside the request that asked for it (0: at once, here);
    with DELAYED_TASKS_IN_SUBPROCESS (the default) the timer runs it in a child process
    (`python -m annotate_site.run_task`), off the web server's interpreter."""
    if task_name not in app.tasks:
        importlib.import_module(task_name.rpartition(".")[0])
    task = app.tasks[task_name]
    if not app.conf.task_always_eager:
        task.apply_async(args, countdown=seconds)
    elif seconds <= 0:
        task.delay(*args)
    else:
        from django.conf import settings

        target = _run_in_subprocess if getattr(settings, "DELAYED_TASKS_IN_SUBPROCESS", False) else _run_in_thread
        timer = threading.Timer(seconds, target, args=(task, args))
        timer.daemon = True
        timer.start()


def enqueue_background(task_name: str, *args) -> None:
    """Send the task now, but never run it inside the calling request: without a broker it starts at
    once on the same path as `enqueue_in` (a child process, or a thread), so a button such as
    "Aggregate now" answers at once. BACKGROUND_TASKS_INLINE (the test settings) runs it right here."""
    from django.conf import settings

    if task_name not in app.tasks:
        importlib.import_module(task_name.rpartition(".")[0])
    task = app.tasks[task_name]
    if not app.conf.task_always_eager or getattr(settings, "BACKGROUND_TASKS_INLINE", False):
        task.delay(*args)
        return
    target = _run_in_subprocess if getattr(settings, "DELAYED_TASKS_IN_SUBPROCESS", False) else _run_in_thread
    threading.Thread(target=target, args=(task, args), daemon=True).start()


def _run_in_thread(task, args) -> None:
    from django.db import connections

    try:
        task.delay(*args)
    finally:
        connections.close_all()  # a thread's connections are its own: close them, not leak them


def _run_in_subprocess(task, args) -> None:
    """Run the task in a child Python with this process's settings and environment; wait for it (the
    timer thread is the only one waiting). Its output goes to this process's stderr (the server log)."""
    import json
    import logging
    import subprocess
    import sys
    from pathlib import Path

    command = [sys.executable, "-m", "annotate_site.run_task", task.name, json.dumps(list(args))]
    try:
        done = subprocess.run(command, cwd=Path(__file__).resolve().parent.parent, env=os.environ.copy(),
                              stdin=subprocess.DEVNULL, check=False)
    except OSError as exc:
        logging.getLogger(__name__).error("could not start %s in a child process (%s); running it here", task.name, exc)
        _run_in_thread(task, args)
        return
    if done.returncode != 0:
        # The aggregation sweep (beat, or the next answer's schedule) picks the layer up again.
        logging.getLogger(__name__).error("%s%r exited with status %s in its child process", task.name, tuple(args),
                                          done.returncode)


@worker_ready.connect
def _catch_up_on_start(sender=None, **kwargs) -> None:
    """A worker that starts (first start, or after a crash or `kill -9`) queues the sweep for layers
    whose answers are newer than their last aggregation: work a dead worker held or lost is redone
    at once, not at the next periodic sweep."""
    from django.conf import settings

    if not getattr(settings, "RESULTS_AGGREGATE_ON_SUBMIT", True):
        return
    try:
        enqueue("tasks.results.aggregate_stale", starting=True)
    except Exception:  # a worker must start even when the broker hiccups; the periodic sweep remains
        import logging

        logging.getLogger(__name__).exception("could not queue the start-up aggregation sweep")
