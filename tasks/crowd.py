"""Celery tasks (crowd). Pass ids, fetch rows inside the task."""
