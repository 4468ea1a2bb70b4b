from django.apps import AppConfig


class ResultsConfig(AppConfig):
    """Aggregated crowd labels, comparison with IoU dissection, dashboards and exports."""

    name = "units.results"
    label = "results"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from units.projects.signals import project_deleting

        from . import signals  # noqa: F401  (connects the aggregation trigger)
        from .services import project_exports_remove

        project_deleting.connect(project_exports_remove, dispatch_uid="results.project_exports_remove")
