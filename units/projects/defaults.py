"""The "Default" project that rows made before projects existed move into (data migrations).

Called by each app's data migration with the historical `apps`; the project is made on first
use only, so a new installation starts without it.
"""
from annotate_site.roles import REQUESTERS_GROUP

DEFAULT_PROJECT = "Default"


def default_project_id(apps) -> int:
    """The Default project's id; made with every current requester as a member (role requester)."""
    Project = apps.get_model("projects", "Project")
    Membership = apps.get_model("projects", "Membership")
    User = apps.get_model("auth", "User")
    project, created = Project.objects.get_or_create(
        name=DEFAULT_PROJECT, defaults={"description": "Everything made before projects existed."})
    if created:
        from django.db.models import Q

        requesters = User.objects.filter(Q(is_staff=True) | Q(is_superuser=True) | Q(groups__name=REQUESTERS_GROUP))
        Membership.objects.bulk_create(
            [
                Membership(project=project, user_id=pk, role="requester")
                for pk in requesters.values_list("pk", flat=True).distinct()
            ],
            ignore_conflicts=True,
        )
    return project.pk


def fill_project(apps, model_names: list[tuple[str, str]]) -> None:
    """Put every row of these models without a project into the Default project."""
    models = [apps.get_model(label, name) for label, name in model_names]
    if not any(model.objects.filter(project=None).exists() for model in models):
        return
    project_id = default_project_id(apps)
    for model in models:
        model.objects.filter(project=None).update(project_id=project_id)
