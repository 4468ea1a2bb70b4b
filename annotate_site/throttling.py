"""Abuse limits: lockout after repeated failed logins and sign-ups (django-axes) and the answer a
client gets when it is throttled: 429 with Retry-After, JSON on the API.

DRF's scoped throttles ("token", "claim", "submit"; rates in settings) answer their own 429 with
Retry-After. Both know a client by the same address, `client_ip`. Imports no app.
"""
from __future__ import annotations

import math
from typing import cast

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle

# Failed sign-ups count against this pseudo user name at the client's address, so guessing invite
# codes or hammering the form is locked out like guessing passwords, without touching real accounts.
SIGNUP_USERNAME = "(sign-up)"


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, as DRF's throttles see it (AXES_CLIENT_IP_CALLABLE, so axes agrees).

    With TRUSTED_PROXIES = 0 (REST_FRAMEWORK's NUM_PROXIES) it is REMOTE_ADDR and X-Forwarded-For is
    ignored: a client can write anything there. Behind n proxies it is the entry n places from the right
    of X-Forwarded-For, the one the outermost trusted proxy appended; entries further left are the
    client's own words.
    """
    return BaseThrottle().get_ident(cast(Request, request))  # get_ident reads only request.META


def _address_key(request: HttpRequest) -> str:
    return f"login-failures:{client_ip(request)}"


class AxesHandler(AxesDatabaseHandler):
    """django-axes' handler plus a per-address limit against password spraying: LOGIN_FAILURES_PER_ADDRESS
    failed logins or sign-ups from one address, whatever the user names, lock that address out until
    LOGIN_LOCKOUT_MINUTES after its first failure. Counted in the cache, like DRF's throttles."""

    def is_locked(self, request, credentials=None) -> bool:
        return super().is_locked(request, credentials) or self._address_locked(request)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        result = super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None:
            return result
        window = int(settings.AXES_COOLOFF_TIME.total_seconds())
        key = _address_key(request)
        cache.add(key, 0, timeout=window)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window)
        # axes flags the request it answers with the lockout only by its own per-user count: flag this
        # one too, so the failure that reaches the address's limit is answered 429 like the rest.
        if self._address_locked(request):
            request.axes_locked_out = True
            request.axes_credentials = credentials
        return result

    @staticmethod
    def _address_locked(request) -> bool:
        return (cache.get(_address_key(request)) or 0) >= settings.LOGIN_FAILURES_PER_ADDRESS


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
