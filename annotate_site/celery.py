"""The Celery application. Tasks live in the `tasks` package; GPU work goes to the `gpu` queue."""
import importlib
import os

from celery import Celery

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
