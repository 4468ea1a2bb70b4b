"""The verify HIT's page: the unit's strip, one proposed label, yes / no / unsure (keys Y, N, U, then Enter).

Served by the work view (`crowd:work`) when the claimed HIT is a verify HIT, so the queue,
return and skip stay the labelling HITs' own.
"""
from __future__ import annotations

from collections.abc import Callable

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone


from ..errors import CrowdError, InvalidAnswer
from ..models import VERDICT_CHOICES, Assignment
from ..selectors import hit_pictures
from ..verify import verdict_submit


# (value, key, words) of the three answers, in the order the page shows them.
VERDICTS_SHOWN = [("yes", "Y", "yes"), ("no", "N", "no"), ("unsure", "U", "unsure")]


class VerdictForm(forms.Form):
    verdict = forms.ChoiceField(choices=VERDICT_CHOICES,
                                error_messages={"required": "Answer yes, no or unsure (keys Y, N, U).",
                                                "invalid_choice": "Answer yes, no or unsure (keys Y, N, U)."})


def verify_work(request: HttpRequest, assignment: Assignment, *, go_on: Callable[[HttpRequest], HttpResponse]
                ) -> HttpResponse:
    """GET shows the HIT, POST records the verdict and goes on to the next HIT (`go_on`)."""
    form = VerdictForm(request.POST if request.method == "POST" else None)  # an empty POST is still a POST
    if request.method == "POST":
        if form.is_valid():
            try:
                verdict_submit(assignment_id=assignment.pk, worker=request.user, verdict=form.cleaned_data["verdict"])
            except InvalidAnswer as exc:
                for errors in exc.errors.values():
                    for error in errors:
                        form.add_error(None, error)
            except CrowdError as exc:
                messages.error(request, str(exc))
                return redirect("crowd:home")
            else:
                messages.success(request, "Submitted. Thank you!")
                return go_on(request)
    else:
        if assignment.status != Assignment.Status.ACCEPTED:
            messages.info(request, f"This assignment is {assignment.get_status_display().lower()}.")
            return redirect("crowd:home")
        if assignment.deadline <= timezone.now():
            messages.error(request, "The time for this assignment ran out; it has been offered to someone else.")
            return redirect("crowd:home")
    hit = assignment.hit
    exemplars = hit_pictures(hit)  # a verify HIT shows its unit's top pictures only, by opaque URLs
    return render(request, "crowd/verify.html", {
        "assignment": assignment, "hit": hit, "form": form, "exemplars": exemplars, "verdicts": VERDICTS_SHOWN,
        "seconds_left": max(0, int((assignment.deadline - timezone.now()).total_seconds())),
    }, status=400 if form.errors else 200)
