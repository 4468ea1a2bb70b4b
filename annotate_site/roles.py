"""Who may do what: annotators label, requesters (staff) publish and review, admins manage."""
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

REQUESTERS_GROUP = "requesters"


def is_requester(user) -> bool:
    """Requesters are staff users or members of the `requesters` group; admins are requesters too.

    A site-wide role: it creates projects and runs the site's crowd (annotators, sign-up, settings).
    What a requester sees of networks, jobs, HITs and results is cut to their projects.
    """
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=REQUESTERS_GROUP).exists()


def is_member(user) -> bool:
    """Requesters, and members of any project in any role (a viewer need not be a requester).

    `memberships` is the projects app's reverse name (this module imports no app); read per
    request, never cached, so a removed member's next request is refused.
    """
    return is_requester(user) or (getattr(user, "is_authenticated", False) and user.memberships.exists())


def requester_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login first; then a 403 page for signed-in users who are not requesters."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_requester(request.user):
            raise PermissionDenied("This page is for requesters.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login first; then a 403 page for signed-in users who are neither requesters nor project members."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_member(request.user):
            raise PermissionDenied("This page is for requesters and project members.")
        return view(request, *args, **kwargs)

    return login_required(wrapped)


class IsRequester(BasePermission):
    message = "This endpoint is for requesters."

    def has_permission(self, request, view) -> bool:
        return is_requester(request.user)


class IsMember(BasePermission):
    message = "This endpoint is for requesters and project members."

    def has_permission(self, request, view) -> bool:
        return is_member(request.user)
