"""Template context: the signed-in user's role, for navigation."""
from .roles import is_member


def roles(request) -> dict:
    return {"is_requester": is_member(getattr(request, "user", None))}
