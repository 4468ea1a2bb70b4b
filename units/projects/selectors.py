"""Reads of projects and members for pages and the API."""
from __future__ import annotations

from django.db.models import Count, QuerySet

from .access import VIEW, scope
from .models import Activity, Invitation, Membership, Pool, Project


def projects_for(user, capability: str = VIEW) -> QuerySet[Project]:
    """The projects `user` may see (or do `capability` in), with their member counts."""
    return scope(Project.objects.all(), user, capability, path="pk").annotate(num_members=Count("memberships"))


def project_for(user, project_id: int, capability: str = VIEW) -> Project:
    """One project of `user`'s; any other id raises Project.DoesNotExist (a 404: ids reveal nothing)."""
    return scope(Project.objects.all(), user, capability, path="pk").get(pk=project_id)


def project_members(project: Project) -> QuerySet[Membership]:
    return project.memberships.select_related("user").order_by("user__username")


def project_open_invitations(project: Project) -> QuerySet[Invitation]:
    return project.invitations.filter(accepted_at=None)


def project_named(text: str) -> Project:
    """A project by name or id, for operators' commands (`--project`); raises Project.DoesNotExist."""
    text = str(text).strip()
    found = Project.objects.filter(name=text).first()
    if found is None and text.isdigit():
        found = Project.objects.filter(pk=int(text)).first()
    if found is None:
        raise Project.DoesNotExist(f"No project named {text!r}.")
    return found


def invitation_open(token: str) -> Invitation | None:
    return Invitation.objects.select_related("project").filter(token=token, accepted_at=None).first()


def project_activity(project: Project) -> QuerySet[Activity]:
    return project.activities.select_related("actor").order_by("-created_at", "-id")


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection): such cells
# are written with a leading apostrophe, which spreadsheets show as text and do not keep.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def activity_csv_rows(project: Project):
    """The activity log as CSV rows, newest first, every cell formula-safe."""
    yield ["time", "who", "what", "detail"]
    for line in project_activity(project).iterator(chunk_size=1000):
        yield [csv_cell(v) for v in (line.created_at.isoformat(), line.actor.username if line.actor else "",
                                     line.get_verb_display(), line.summary)]


def project_pools(project: Project) -> QuerySet[Pool]:
    return project.pools.prefetch_related("members").order_by("name")
