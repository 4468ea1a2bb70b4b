"""A project's crowd channels (Mechanical Turk, Prolific): credentials, budget cap, Prolific's study settings.

Owners only (the `manage` capability): other members get 403, non-members 404. Secrets are write-only.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from annotate_site.roles import member_required
from units.projects.access import MANAGE, VIEW, WORK, may, scope
from units.projects.models import Project
from units.projects.selectors import project_for

from ..channels import (
    MTURK_CHANNELS, budget_left, channel_credentials, channel_settings_of, channel_settings_update, project_spending,
)
from ..forms import ChannelSettingsForm
from ..errors import CrowdError
from ..models import Channel, HitBatch
from .. import mturk
from ..prolific import study_url
from ..publishing import batch_expire, redundancy_defaults


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
    balance = None
    if request.GET.get("balance") in MTURK_CHANNELS and creds.has_mturk:
        channel = request.GET["balance"]
        try:
            balance = f"${mturk.account_balance(mturk.mturk_client(project.pk, channel))} on {Channel(channel).label}"
        except CrowdError as exc:
            balance = str(exc)
    batches = list(HitBatch.objects.filter(project=project).annotate(n_hits=Count("hits"))
                   .order_by("-created_at")[:100])
    defaults = redundancy_defaults()
    for batch in batches:  # what the requester pastes into the Prolific study
        batch.study_url = study_url(batch) if batch.channel == Channel.PROLIFIC else ""
        # Adaptive redundancy as the batch's label HITs get it: its own settings, else the site's.
        batch.more_below = (defaults["probability"] if batch.redundancy_probability is None
                            else batch.redundancy_probability)
        batch.most_answers = batch.redundancy_cap or defaults["cap"]
        batch.redundancy_own = batch.redundancy_probability is not None or batch.redundancy_cap is not None
    return render(request, "crowd/channels.html", {
        "project": project, "form": form, "has_mturk": creds.has_mturk, "has_prolific": creds.has_prolific,
        "source": creds.source, "spent": project_spending(project.pk), "left": budget_left(project.pk),
        "batches": batches, "balance": balance,
    })


@member_required
@require_POST
def batch_expire_view(request: HttpRequest, pk: int) -> HttpResponse:
    """Close a batch's open HITs now (on MTurk too): members who may work on its project."""
    batch = get_object_or_404(scope(HitBatch.objects.all(), request.user, VIEW), pk=pk)
    if not may(request.user, batch.project, WORK):
        raise PermissionDenied("Only the project's owners and requesters may expire its batches.")
    n = batch_expire(batch=batch, by=request.user)
    messages.success(request, f"Batch {batch.pk} expired: {n} open HIT(s) closed.")
    return redirect("crowd:channels", project_id=batch.project_id)
