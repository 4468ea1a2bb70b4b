"""Celery tasks (sanity). Pass ids, fetch rows inside the task."""
