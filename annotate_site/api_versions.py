"""API versions: the current API is /api/v1/; the unversioned /api/ paths answer the same, marked deprecated.

The unversioned paths stay for one release so scripts written against them keep working; each of their
answers carries `Deprecation` (RFC 9745: the date they were deprecated) and a `Link` to the same path
under /api/v1/. The schema describes /api/v1/ only, so generated clients use the versioned paths.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import HttpRequest, HttpResponse

CURRENT = "/api/v1/"
UNVERSIONED = "/api/"
# Not versioned: the schema and its docs describe the API rather than being part of it.
NOT_VERSIONED = ("/api/v1/", "/api/schema/", "/api/docs/")
DEPRECATED_SINCE = "@1796515200"  # 2026-12-06 00:00 UTC as an RFC 9745 structured-field date


class DeprecatedApiPathMiddleware:
    """Marks answers to the unversioned /api/ paths as deprecated and names their /api/v1/ successor."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        path = request.path_info
        if path.startswith(UNVERSIONED) and not path.startswith(NOT_VERSIONED):
            response["Deprecation"] = DEPRECATED_SINCE
            response["Link"] = f'<{CURRENT}{path[len(UNVERSIONED):]}>; rel="successor-version"'
        return response


def current_version_only(endpoints: list[tuple[Any, ...]], **kwargs: Any) -> list[tuple[Any, ...]]:
    """drf-spectacular preprocessing hook: the schema lists each operation once, under /api/v1/."""
    return [e for e in endpoints if not e[0].startswith(UNVERSIONED) or e[0].startswith(NOT_VERSIONED)]
