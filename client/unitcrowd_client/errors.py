"""Exceptions: each carries the server's message, its field errors and the HTTP status, and says what to do."""
from __future__ import annotations

from typing import Any


class UnitCrowdError(Exception):
    """Any refusal by the server. `message` is the server's own text; `field_errors` maps a field to its messages."""

    hint = ""

    def __init__(self, message: str, *, status: int | None = None, field_errors: dict[str, list[str]] | None = None,
                 body: Any = None) -> None:
        self.message = message
        self.status = status
        self.field_errors = field_errors or {}
        self.body = body
        text = message
        if self.field_errors:
            text += " (" + "; ".join(f"{k}: {' '.join(v)}" for k, v in self.field_errors.items()) + ")"
        if self.hint:
            text += f" -- {self.hint}"
        super().__init__(f"[{status}] {text}" if status else text)


class AuthenticationError(UnitCrowdError):
    hint = ("check the token, or log in again with username and password "
            "(tokens expire after the server's API_TOKEN_TTL_HOURS)")


class PermissionDenied(UnitCrowdError):
    hint = "this account lacks the role for it; ask an admin to add it to the requesters group"


class NotFound(UnitCrowdError):
    hint = "check the id or name; list what exists with .list()"


class ValidationError(UnitCrowdError):
    hint = "fix the named fields and send it again"


class ConflictError(UnitCrowdError):
    hint = "the object is not ready for this yet; wait and try again"


class RateLimited(UnitCrowdError):
    hint = "too many requests; the client retried as Retry-After asked, wait longer before the next call"


class ServerUnavailable(UnitCrowdError):
    hint = "the server is down or unreachable; check the URL and that the server runs, then try again"


class JobFailed(UnitCrowdError):
    hint = "read the job's error_message, fix the network or dataset, and start the job again"


def error_for(status: int, body: Any) -> UnitCrowdError:
    """The exception for an HTTP error answer, with the server's message and field errors pulled out of DRF's body."""
    message, fields = _message_and_fields(body)
    if not message:
        message = f"HTTP {status}"
    cls: type[UnitCrowdError] = {400: ValidationError, 401: AuthenticationError, 403: PermissionDenied,
                                 404: NotFound, 409: ConflictError, 429: RateLimited}.get(status, UnitCrowdError)
    if status in (502, 503, 504):
        cls = ServerUnavailable
    return cls(message, status=status, field_errors=fields, body=body)


def _message_and_fields(body: Any) -> tuple[str, dict[str, list[str]]]:
    if isinstance(body, str):  # a proxy's or Django's HTML page says nothing a script can use
        return ("" if body.lstrip().startswith("<") else body.strip()[:500]), {}
    if isinstance(body, list):
        return " ".join(str(x) for x in body), {}
    if not isinstance(body, dict):
        return "", {}
    fields: dict[str, list[str]] = {}
    message = ""
    for key, value in body.items():
        texts = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        if key == "detail":
            message = " ".join(texts)
        elif key == "non_field_errors":
            message = message or " ".join(texts)
        elif key == "errors" and isinstance(value, dict):
            fields.update({k: [str(x) for x in (v if isinstance(v, list) else [v])] for k, v in value.items()})
        else:
            fields[key] = texts
    if not message and fields:
        message = "The request was refused."
    return message, fields
