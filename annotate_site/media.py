"""Media files (exemplar pictures, strips, reports) are served only to signed-in users.

Network checkpoints and a job's intermediate shard states are for requesters only:
annotators need pictures, not model weights.
"""
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.views.static import serve

from .roles import is_requester

_REQUESTER_ONLY_PREFIXES = ("checkpoints/",)
_REQUESTER_ONLY_PARTS = ("shards",)


def _requester_only(path: str) -> bool:
    parts = path.replace("\\", "/").split("/")
    return path.startswith(_REQUESTER_ONLY_PREFIXES) or any(p in _REQUESTER_ONLY_PARTS for p in parts)


@login_required
def protected_media(request, path: str):
    if _requester_only(path) and not is_requester(request.user):
        raise PermissionDenied("This file is for requesters.")
    # django.views.static.serve refuses paths that leave MEDIA_ROOT.
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    response["Cache-Control"] = "private, max-age=3600"
    return response
