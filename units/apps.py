from django.apps import AppConfig


class UnitsConfig(AppConfig):
    """Networks, probe datasets, dissection jobs and their units."""

    name = "units"
    default_auto_field = "django.db.models.BigAutoField"
