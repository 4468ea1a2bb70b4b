"""Serializer fields of other apps' APIs that name a project."""
from rest_framework import serializers

from ..access import WORK, scope
from ..models import Project


class ProjectField(serializers.PrimaryKeyRelatedField):
    """A project id the requesting user may do `capability` in; any other id reads as not existing."""

    def __init__(self, capability: str = WORK, **kwargs):
        self.capability = capability
        kwargs.setdefault("help_text", "The id of a project you are an owner or requester of.")
        super().__init__(**kwargs)

    def get_queryset(self):
        request = self.context.get("request")
        return scope(Project.objects.all(), getattr(request, "user", None), self.capability, path="pk")
