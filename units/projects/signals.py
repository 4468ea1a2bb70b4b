"""Signals of the projects app; the apps above it listen (it imports none of them)."""
from django.dispatch import Signal

# Sent inside project_delete's transaction, before the project row goes: receivers delete the
# project's rows that a cascade would refuse (PROTECT) and schedule its files' removal on commit.
project_deleting = Signal()  # kwargs: project, deleted_by
