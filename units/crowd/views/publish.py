"""The requester's publish page: the units of chosen layers become HITs (served at /publish/)."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotate_site.roles import requester_required
from units.dissection.models import Layer
from units.projects.access import WORK
from units.projects.current import current_project

from ..forms import PublishForm
from ..errors import PublishError
from ..channels import PAID_CHANNELS, batch_cost, budget_left, channel_notice
from ..external_work import channel_balance
from ..models import Channel, LabelSource
from ..publishing import PublishSettings, hit_publish, publishable_units
from ..verify import hit_publish_verify, publishable_verify_hits


@requester_required
def publish(request: HttpRequest) -> HttpResponse:
    project = current_project(request, WORK)
    if project is None:
        messages.error(
            request, "Publishing needs a project where you are owner or requester; create or join one first."
        )
        return redirect("projects:list")
    initial = {}
    job = request.GET.get("job", "")
    if job.isdigit() and int(job) <= 2**63 - 1:  # anything else (a typo, a huge number) just preselects nothing
        initial["layers"] = list(
            Layer.objects.filter(job_id=int(job), job__project=project).values_list("pk", flat=True)
        )
    form = PublishForm(request.POST or None, initial=initial, user=request.user, project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        settings = PublishSettings(
            assignments_per_hit=data["assignments_per_hit"], reward=data["reward"],
            lifetime_seconds=round(data["lifetime_hours"] * 3600),
            assignment_duration_seconds=round(data["assignment_minutes"] * 60),
            auto_approval_delay_seconds=round(data["auto_approval_hours"] * 3600),
            exemplars_shown=data["exemplars_shown"], sentinels=data["sentinels"], skip_dead=data["skip_dead"],
            name=data["title"].strip(), channel=data.get("channel") or Channel.SITE,
            redundancy_probability=data.get("redundancy_probability"), redundancy_cap=data.get("redundancy_cap"),
        )
        if settings.channel in PAID_CHANNELS and not data.get("confirm_cost"):
            # Real money: show what the batch would cost, and publish only once the requester accepts it.
            if data.get("hit_type") == "verify":
                n = publishable_verify_hits(data["layers"], sources=data["label_sources"] or [LabelSource.IOU],
                                            sentinels=data["sentinels"], skip_dead=data["skip_dead"])
            else:
                n = publishable_units(data["layers"], skip_dead=data["skip_dead"])
            cost = batch_cost(channel=settings.channel, reward=data["reward"],
                              assignments_per_hit=data["assignments_per_hit"], hits=n)
            left = budget_left(project.pk)
            balance = channel_balance(project.pk, settings.channel)
            form.add_error("confirm_cost", f"{Channel(settings.channel).label}: {n} HITs would cost up to {cost}"
                           + (f"; ${left} left of the budget cap" if left is not None else "; no budget cap set")
                           + ". " + (balance + " " if balance else "") + "Tick the box to publish.")
            return _render(request, form, project)
        try:
            if data.get("hit_type") == "verify":
                batch = hit_publish_verify(layers=data["layers"], sources=data["label_sources"], settings=settings,
                                           created_by=request.user, pool=data["pool"])
            else:
                batch = hit_publish(
                    layers=data["layers"], settings=settings, created_by=request.user, pool=data["pool"]
                )
        except PublishError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Publishing: {batch.report}.")
            return redirect("publish")
    return _render(request, form, project)


def _render(request: HttpRequest, form: PublishForm, project) -> HttpResponse:
    return render(request, "dissection/form.html", {"form": form, "title": f"Publish units of {project.name} as HITs",
                                                    "notice": channel_notice(project.pk)})
