"""The site's front door: each role lands on its own start page."""
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from .roles import is_requester


@login_required
def home(request):
    if is_requester(request.user):
        return redirect("units:job_list")
    return redirect("crowd:home")
