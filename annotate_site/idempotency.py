"""Idempotency keys on the API's POSTs: a retried create returns the first answer instead of creating twice.

A client that sends `Idempotency-Key: <unique string>` with a POST under /api/ may send the same request
again after a dropped connection or a 503: the second gets the first one's answer (status and body),
marked `Idempotent-Replayed: true`, and nothing runs twice. Keys are scoped to the caller's credentials
and the path, and kept for IDEMPOTENCY_TTL_SECONDS in the cache (Redis in a deployment, so every web
worker sees them). A key whose first request is still running answers 409; answers of 5xx are not kept,
nor those of 429, so the request may be retried. Anonymous requests and /auth/ paths are left alone.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse, JsonResponse

HEADER = "HTTP_IDEMPOTENCY_KEY"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
RUNNING_TTL_SECONDS = 600  # a request that died mid-way frees its key after this
MAX_KEY_LENGTH = 200
MAX_KEPT_BODY = 1 << 20  # answers larger than this are not kept (the API's creates answer a few kB)


def _credentials(request: HttpRequest) -> str:
    return request.META.get("HTTP_AUTHORIZATION") or request.COOKIES.get(settings.SESSION_COOKIE_NAME, "")


def _cache_key(request: HttpRequest, key: str) -> str:
    who = _credentials(request)
    scope = hashlib.sha256(f"{who}\n{request.path_info}\n{key}".encode()).hexdigest()
    return f"idempotency:{scope}"


class IdempotencyKeyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.META.get(HEADER, "")
        # Anonymous callers would share one scope, and a token's answer must never be replayed: neither is kept.
        path = request.path_info
        if (request.method != "POST" or not key or not path.startswith("/api/") or "/auth/" in path
                or not _credentials(request)):
            return self.get_response(request)
        if len(key) > MAX_KEY_LENGTH:
            return JsonResponse({"detail": f"Idempotency-Key is longer than {MAX_KEY_LENGTH} characters."},
                                status=400)
        stored_key = _cache_key(request, key)
        # cache.add is atomic (Redis SET NX): of two requests with one key, only one runs.
        if not cache.add(stored_key, {"running": True}, RUNNING_TTL_SECONDS):
            stored = cache.get(stored_key) or {"running": True}
            if stored.get("running"):
                return JsonResponse({"detail": "A request with this Idempotency-Key is still running; "
                                               "retry it in a moment."}, status=409)
            replay = HttpResponse(stored["body"], status=stored["status"], content_type=stored["content_type"])
            replay["Idempotent-Replayed"] = "true"
            return replay
        response = self.get_response(request)
        retryable = response.status_code >= 500 or response.status_code == 429
        if retryable or getattr(response, "streaming", False) or len(response.content) > MAX_KEPT_BODY:
            cache.delete(stored_key)
        else:
            cache.set(stored_key, {"running": False, "status": response.status_code, "body": response.content,
                                   "content_type": response.get("Content-Type", "application/json")},
                      IDEMPOTENCY_TTL_SECONDS)
        return response
