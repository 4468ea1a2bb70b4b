"""Site-wide pages: the front door (each role lands on its own start page) and the health check
for load balancers and docker compose (the process answers and the database too)."""
from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from .roles import is_member


@login_required
def home(request: HttpRequest) -> HttpResponse:
    if is_member(request.user):
        return redirect("dissection:job_list")
    return redirect("crowd:home")


def healthz(request: HttpRequest) -> HttpResponse:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any database failure means "not healthy"
        return HttpResponse(f"database unavailable: {type(exc).__name__}", status=503, content_type="text/plain")
    return HttpResponse("ok", content_type="text/plain")


def password_reset_hidden(request: HttpRequest, **_kwargs) -> HttpResponse:
    """The site sends no mail, so Django's password reset would mail nobody (or fail on an SMTP server
    that is not there) while inviting anyone to hammer it: it does not exist here. A forgotten
    password is reset by an admin (Django admin, or `manage.py changepassword NAME`)."""
    raise Http404("Password reset is not offered: ask an administrator.")
