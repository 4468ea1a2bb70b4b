"""The Celery application. Tasks live in the `tasks` package; GPU work goes to the `gpu` queue."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotate_site.settings")

app = Celery("unitcrowd")
app.config_from_object("django.conf:settings", namespace="CELERY")
