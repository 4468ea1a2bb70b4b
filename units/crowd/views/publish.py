"""The requester's publish page: the units of chosen layers become HITs (served at /publish/)."""
from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from annotate_site.roles import requester_required
from units.dissection.models import Layer

from ..forms import PublishForm
from ..publishing import PublishError, hit_publish
from ..verify import hit_publish_verify


@requester_required
def publish(request: HttpRequest) -> HttpResponse:
    initial = {}
    job = request.GET.get("job", "")
    if job.isdigit() and int(job) <= 2**63 - 1:  # anything else (a typo, a huge number) just preselects nothing
        initial["layers"] = list(Layer.objects.filter(job_id=int(job)).values_list("pk", flat=True))
    form = PublishForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = dict(
            layers=data["layers"], assignments_per_hit=data["assignments_per_hit"], reward=data["reward"],
            lifetime_seconds=round(data["lifetime_hours"] * 3600),
            assignment_duration_seconds=round(data["assignment_minutes"] * 60),
            auto_approval_delay_seconds=round(data["auto_approval_hours"] * 3600),
            exemplars_shown=data["exemplars_shown"], sentinels=data["sentinels"], skip_dead=data["skip_dead"],
            created_by=request.user, name=data["title"].strip(),
        )
        try:
            if data.get("hit_type") == "verify":
                batch = hit_publish_verify(sources=data["label_sources"], **options)
            else:
                batch = hit_publish(**options)
        except PublishError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Publishing: {batch.report}.")
            return redirect("publish")
    return render(request, "dissection/form.html", {"form": form, "title": "Publish units as HITs"})
