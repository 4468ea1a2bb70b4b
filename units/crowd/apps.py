from django.apps import AppConfig


class CrowdConfig(AppConfig):
    """Crowd work: HIT batches, HITs, assignments, annotations, annotators."""

    name = "units.crowd"
    label = "crowd"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotate_site import tokens  # noqa: F401  (connects: revoke API tokens on password change)

        from . import checks  # noqa: F401  (registers the deploy check of SITE_URL for outside crowds)
