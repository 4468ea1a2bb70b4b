from django.apps import AppConfig


class CrowdConfig(AppConfig):
    """Crowd work: HIT batches, HITs, assignments, annotations, annotators."""

    name = "units.crowd"
    label = "crowd"
    default_auto_field = "django.db.models.BigAutoField"
