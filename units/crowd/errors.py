"""Domain errors of the crowd flow; views turn them into form errors, messages or 4xx JSON."""


class CrowdError(Exception):
    """A request the crowd rules refuse; `str(error)` is a message for the user."""

    status_code = 400


class NotAllowed(CrowdError):
    """The user may not act on this object (someone else's assignment, not qualified, blocked)."""

    status_code = 403


class NotFound(CrowdError):
    """The object does not exist (an API client's stale or mistyped id)."""

    status_code = 404


class Conflict(CrowdError):
    """The object is in a state that refuses the action (deadline passed, already submitted)."""

    status_code = 409


class PublishError(CrowdError):
    """Publishing was refused; the message says why and what to change."""


class InvalidAnswer(CrowdError):
    """The answer does not pass validation; `errors` maps field names to messages."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items()))
