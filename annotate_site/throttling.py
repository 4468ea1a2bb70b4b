"""Abuse limits: lockout after repeated failed logins and sign-ups (django-axes) and the answer a
client gets when it is throttled: 429 with Retry-After, JSON on the API.

DRF's scoped throttles ("token", "claim", "submit"; rates in settings) answer their own 429 with
Retry-After. Imports no app.
"""
from __future__ import annotations

import math

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.http import HttpRequest, HttpResponse, JsonResponse

# Failed sign-ups count against this pseudo user name at the client's address, so guessing invite
# codes or hammering the form is locked out like guessing passwords, without touching real accounts.
SIGNUP_USERNAME = "(sign-up)"


def retry_after_seconds(request: HttpRequest) -> int:
    cool_off = get_cool_off(request)
    return max(1, math.ceil(cool_off.total_seconds())) if cool_off else 3600


def lockout_response(request: HttpRequest, original_response=None, credentials=None) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: what a locked-out login, sign-up or token request gets."""
    seconds = retry_after_seconds(request)
    message = f"Too many failed attempts. Try again in {math.ceil(seconds / 60)} minutes."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message, "retry_after": seconds}, status=429)
    else:
        response = HttpResponse(f"<!doctype html><title>Too many attempts</title><h1>Too many attempts</h1>"
                                f"<p>{message}</p>", status=429)
    response["Retry-After"] = str(seconds)
    return response


def signup_locked(request: HttpRequest) -> bool:
    if not settings.AXES_ENABLED:
        return False
    return not AxesProxyHandler.is_allowed(request, {"username": SIGNUP_USERNAME})


def signup_failed(request: HttpRequest) -> None:
    if settings.AXES_ENABLED:
        user_login_failed.send(sender=__name__, credentials={"username": SIGNUP_USERNAME}, request=request)
