from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    """Projects, their members and roles: the bottom app, which every other app scopes its rows by."""

    name = "units.projects"
    label = "projects"
    default_auto_field = "django.db.models.BigAutoField"
