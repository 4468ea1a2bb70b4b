"""Celery tasks (results). Pass ids, fetch rows inside the task."""
