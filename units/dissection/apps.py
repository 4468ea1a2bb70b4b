from django.apps import AppConfig


class DissectionConfig(AppConfig):
    """Networks, probe datasets, dissection jobs and their layers, units and exemplars.

    The label stays "units" (the app's name before it moved to units/dissection/), so the
    migration history, content types and permissions of existing databases carry over.
    """

    name = "units.dissection"
    label = "units"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from units.projects.signals import project_deleting

        from .services import project_rows_delete

        project_deleting.connect(project_rows_delete, dispatch_uid="dissection.project_rows_delete")
