"""Celery tasks (jobs). Pass ids, fetch rows inside the task."""
