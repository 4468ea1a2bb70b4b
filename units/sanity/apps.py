from django.apps import AppConfig


class SanityConfig(AppConfig):
    """The Mixture-of-digits sanity-check experiment and its report."""

    name = "units.sanity"
    label = "sanity"
    default_auto_field = "django.db.models.BigAutoField"
