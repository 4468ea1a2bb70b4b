"""Serializer fields and view mixins of other apps' APIs: every id they take or show is scoped."""
from django.core.exceptions import PermissionDenied
from rest_framework import serializers
from rest_framework.permissions import SAFE_METHODS

from ..access import VIEW, WORK, scope
from ..models import Project


class ProjectField(serializers.PrimaryKeyRelatedField):
    """A project (its id, or its name) the requesting user may do `capability` in; any other reads as not
    existing, whether it exists or not."""

    def __init__(self, capability: str = WORK, **kwargs):
        self.capability = capability
        kwargs.setdefault("help_text", "The id or the name of a project you are an owner or requester of.")
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return scope(Project.objects.all(), getattr(request, "user", None), self.capability, path="pk")

    def to_internal_value(self, data):
        if isinstance(data, str) and data.strip() and not data.strip().isdigit():
            found = self.get_queryset().filter(name=data.strip()).first()
            if found is None:
                self.fail("does_not_exist", pk_value=data)
            return found
        return super().to_internal_value(data)


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """An id of a row in a project where the requesting user may do `capability` (others: "does not exist")."""

    def __init__(self, capability: str = WORK, project_path: str = "project", **kwargs):
        self.capability, self.project_path = capability, project_path
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return scope(super().get_queryset(), getattr(request, "user", None), self.capability, path=self.project_path)


class ProjectScopedMixin:
    """For viewsets: the queryset is cut to the caller's projects; changing a row needs `write_capability`.

    `project_path` leads from the viewset's model to its project ("layer__job__project").
    """

    project_path = "project"
    write_capability = WORK

    def get_queryset(self):
        return scope(super().get_queryset(), self.request.user, VIEW, path=self.project_path)

    def check_object_permissions(self, request, obj) -> None:
        super().check_object_permissions(request, obj)
        if request.method in SAFE_METHODS:
            return
        model = type(obj)
        allowed = scope(model._default_manager.filter(pk=obj.pk), request.user, self.write_capability,
                        path=self.project_path)
        if not allowed.exists():
            raise PermissionDenied("Your role in this project does not allow this.")
