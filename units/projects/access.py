"""What each role may do, and the one query that answers "which projects may this user ... ?".

Every page, API view, export, media file and picture of the other apps scopes its rows with
`scope()` (through the app's selectors); nothing caches a member's role, so removing a member or
changing a role takes effect on their next request.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet

from .models import Membership, Project, Role

# Capabilities, from the widest audience to the narrowest.
VIEW = "view"  # results, exports, the project's pages: every member
REVIEW = "review"  # approve or reject work: reviewers, requesters, owners
WORK = "work"  # register networks and datasets, dissect, publish, import, change synonyms: requesters, owners
MANAGE = "manage"  # members, settings, crowd channels, the activity log, deletion: owners

ROLES_WITH = {
    VIEW: (Role.OWNER, Role.REQUESTER, Role.REVIEWER, Role.VIEWER),
    REVIEW: (Role.OWNER, Role.REQUESTER, Role.REVIEWER),
    WORK: (Role.OWNER, Role.REQUESTER),
    MANAGE: (Role.OWNER,),
}


def is_site_admin(user) -> bool:
    """Site admins (superusers) see and change every project."""
    return bool(getattr(user, "is_authenticated", False) and user.is_superuser)


def project_ids(user, capability: str = VIEW) -> QuerySet:
    """The ids of the projects where `user` may do `capability`, as a subquery (read per request)."""
    return Membership.objects.filter(user_id=user.pk, role__in=ROLES_WITH[capability]).values("project_id")


def scope(queryset: QuerySet, user, capability: str = VIEW, *, path: str = "project") -> QuerySet:
    """`queryset` cut to the rows of the projects where `user` may do `capability`.

    `path` is the lookup from the queryset's model to its project ("project", "layer__job__project").
    Anonymous users get nothing; site admins get everything.
    """
    if not getattr(user, "is_authenticated", False):
        return queryset.none()
    if is_site_admin(user):
        return queryset
    return queryset.filter(**{f"{path}__in": project_ids(user, capability)})


def may(user, project: Project | int | None, capability: str = VIEW) -> bool:
    """Whether `user` may do `capability` in `project` (a row or an id)."""
    if project is None or not getattr(user, "is_authenticated", False):
        return False
    if is_site_admin(user):
        return True
    project_id = project if isinstance(project, int) else project.pk
    return Membership.objects.filter(user_id=user.pk, project_id=project_id,
                                     role__in=ROLES_WITH[capability]).exists()


def role_of(user, project: Project) -> str | None:
    """The member's role in `project`, or None (site admins who are not members included)."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Membership.objects.filter(user_id=user.pk, project=project).values_list("role", flat=True).first()


def object_for(queryset: QuerySet, user, pk, capability: str = VIEW, *, path: str = "project"):
    """One row of `queryset` by pk, for a user who may do `capability` in its project.

    Not in any of the user's projects: `DoesNotExist` (a 404; ids reveal nothing). In one of them,
    but the role lacks the capability: PermissionDenied (a 403).
    """
    obj = scope(queryset, user, VIEW, path=path).get(pk=pk)
    if capability != VIEW and not scope(queryset.model._default_manager.filter(pk=obj.pk), user, capability,
                                        path=path).exists():
        raise PermissionDenied("Your role in this project does not allow this.")
    return obj
