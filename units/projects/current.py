"""The current project of a signed-in user's pages (kept in the session, checked on every read)."""
from __future__ import annotations

from django.http import HttpRequest

from .access import VIEW, scope
from .models import Project

SESSION_KEY = "current_project"


def current_project(request: HttpRequest, capability: str = VIEW) -> Project | None:
    """The session's project if the user may still do `capability` there, else their first such project.

    Membership is read on each call, so a removed member's session loses the project at once.
    """
    projects = scope(Project.objects.order_by("name"), request.user, capability, path="pk")
    chosen = request.session.get(SESSION_KEY)
    project = projects.filter(pk=chosen).first() if chosen else None
    if project is None:
        project = projects.first()
        if project is not None:
            request.session[SESSION_KEY] = project.pk
    return project


def current_project_set(request: HttpRequest, project: Project) -> None:
    request.session[SESSION_KEY] = project.pk
