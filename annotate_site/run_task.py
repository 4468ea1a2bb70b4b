"""Run one Celery task synchronously in this process: `python -m annotate_site.run_task NAME JSON_ARGS`.

The embedded setup (no broker) starts its delayed tasks this way (annotate_site.celery.enqueue_in), so a
layer's aggregation, seconds of Dawid-Skene holding the GIL, runs beside the web server rather than
inside its interpreter. Exit status 0 when the task returned, 1 when it raised (the error is logged),
2 for a bad command line.
"""
from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m annotate_site.run_task TASK_NAME JSON_ARGS", file=sys.stderr)
        return 2
    name, raw = argv
    try:
        args = json.loads(raw)
    except ValueError:
        print(f"run_task: the arguments must be a JSON list, got {raw!r}", file=sys.stderr)
        return 2
    if not isinstance(args, list) or not name.startswith("tasks."):
        print("run_task: TASK_NAME is a task of the tasks package and JSON_ARGS a JSON list", file=sys.stderr)
        return 2
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate_site.settings")
    import django

    django.setup()
    from annotate_site.celery import app

    with contextlib.suppress(ImportError):  # reported just below
        importlib.import_module(name.rpartition(".")[0])
    if name not in app.tasks:
        print(f"run_task: no task called {name!r}", file=sys.stderr)
        return 2
    try:
        app.tasks[name](*args)  # calling a task object runs its body here, synchronously
    except Exception:
        logging.getLogger("annotate_site.run_task").exception("%s%r failed", name, tuple(args))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
