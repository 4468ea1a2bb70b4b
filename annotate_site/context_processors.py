"""Template context: the signed-in user's role, for navigation."""
from .roles import is_requester


def roles(request) -> dict:
    return {"is_requester": is_requester(getattr(request, "user", None))}
