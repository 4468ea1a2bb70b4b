"""A project's crowd channels (Mechanical Turk, Prolific): credentials, budget cap, Prolific's study settings.

Owners only (the `manage` capability): other members get 403, non-members 404. Secrets are write-only.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from annotate_site.roles import member_required
from units.projects.access import MANAGE, may
from units.projects.models import Project
from units.projects.selectors import project_for

from ..channels import budget_left, channel_credentials, channel_settings_of, channel_settings_update, project_spending
from ..forms import ChannelSettingsForm
from ..models import HitBatch


def _owned_project(request: HttpRequest, project_id: int) -> Project:
    try:
        project = project_for(request.user, project_id)
    except Project.DoesNotExist:
        raise Http404("No such project.") from None
    if not may(request.user, project, MANAGE):
        raise PermissionDenied("Only the project's owners may set its crowd channels.")
    return project


@member_required
@require_http_methods(["GET", "POST"])
def channel_settings(request: HttpRequest, project_id: int) -> HttpResponse:
    project = _owned_project(request, project_id)
    row = channel_settings_of(project)
    form = ChannelSettingsForm.for_row(row, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        channel_settings_update(project=project, by=request.user, **form.cleaned_data)
        messages.success(request, "Crowd channel settings saved.")
        return redirect("crowd:channels", project_id=project.pk)
    creds = channel_credentials(project)
    batches = (HitBatch.objects.filter(project=project).annotate(n_hits=Count("hits"))
               .order_by("-created_at")[:100])
    return render(request, "crowd/channels.html", {
        "project": project, "form": form, "has_mturk": creds.has_mturk, "has_prolific": creds.has_prolific,
        "source": creds.source, "spent": project_spending(project.pk), "left": budget_left(project.pk),
        "batches": batches,
    })
