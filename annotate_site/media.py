"""Who may read what under MEDIA_ROOT, decided here; the bytes go out through django-sendfile2.

- `/media/<path>`: members of the project that owns the file only (default deny): a job's folder
  (`jobs/<job id>/...`), a network's checkpoint, an export's file; sanity reports (`sanity/...`,
  site-wide) to requesters. Anything else, and another project's file, answers 404 to members
  (403 to everyone else, as before: annotators never need a path, and a picture's path says
  whether it is a sentinel, `<layer>/sentinels/...`).
- `/pictures/<public_id>.jpg`: one opaque URL per exemplar picture, for the annotator who holds or
  held a HIT showing it (or whose qualification test showed it), and for members of its project;
  with `?sig=...` (units/crowd/picture_links.py) for anyone holding that signed link until it
  expires, if the HIT it was signed for shows the picture (or the qualification attempt it was signed for,
  while not yet handed in): the outside crowds' workers have no session.

Both take the signed-in session or an API token (`Authorization: Token ...`): the API hands these URLs
to token clients, which have no session.

The decision is taken on the path as the file system will resolve it (percent-decoded by Django,
then normalised here), never on the raw string, so `//`, `/./` and `..` cannot slip past it.
In production the web server sends the file after Django said yes (X-Accel-Redirect or
X-Sendfile, setting MEDIA_SENDFILE); `django.views.static.serve` is the development fallback.
"""
from __future__ import annotations

import posixpath
from pathlib import Path

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_safe
from django_sendfile import sendfile
from rest_framework.exceptions import AuthenticationFailed

from units.crowd.models import Hit, QualificationAttempt
from units.crowd.picture_links import PARAMETER, picture_link_attempt, picture_link_hit
from units.crowd.selectors import hit_exemplars, picture_visible_to, qualification_exemplars
from units.dissection.models import DissectionJob, Exemplar, Network
from units.projects.access import is_site_admin, scope
from units.results.models import ExportJob

from .roles import is_member, is_requester
from .tokens import TokenAuthentication


def media_file(relpath: str) -> Path | None:
    """The file `relpath` names inside MEDIA_ROOT, or None if it names nothing there."""
    cleaned = posixpath.normpath("/" + relpath.replace("\\", "/")).lstrip("/")
    if not cleaned or cleaned == "." or "\x00" in cleaned:
        return None
    root = Path(settings.MEDIA_ROOT).resolve()
    target = (root / cleaned).resolve()  # follows links, so a link cannot point out either
    if not target.is_relative_to(root) or not target.is_file():
        return None
    return Path(settings.MEDIA_ROOT) / cleaned  # under SENDFILE_ROOT as configured, links and all


def _viewer(request: HttpRequest):
    """The session's user, else the API token's; None for anyone else (a bad token included)."""
    if request.user.is_authenticated:
        return request.user
    try:
        found = TokenAuthentication().authenticate(request)
    except AuthenticationFailed:
        return None
    return found[0] if found else None


def media_visible_to(user, relpath: str) -> bool:
    """Whether `user` may read the file `relpath` (relative to MEDIA_ROOT, normalised): its project's members."""
    if is_site_admin(user):
        return True
    parts = relpath.split("/")
    if parts[0] == "jobs" and len(parts) > 2 and parts[1].isdigit() and len(parts[1]) < 19:
        return scope(DissectionJob.objects.filter(pk=int(parts[1])), user).exists()
    if parts[0] == "exports":
        return scope(ExportJob.objects.filter(file=relpath), user).exists()
    if parts[0] == "checkpoints":
        return scope(Network.objects.filter(checkpoint=relpath), user).exists()
    if parts[0] == "sanity":
        return is_requester(user)  # the sanity reports are the site's, not a project's
    return False


def _send(request: HttpRequest, path: Path, *, name: str | None = None) -> HttpResponse:
    response = sendfile(request, path, attachment_filename=name if name else None)
    response["Cache-Control"] = "private, max-age=3600"
    patch_vary_headers(response, ["Cookie", "Authorization"])
    return response


def _denied(request: HttpRequest) -> HttpResponse:
    # A plain 403 rather than a redirect to the login page: these URLs are fetched by <img> tags and
    # scripts, which cannot sign in, and a redirect would hide the refusal from them.
    return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")


@require_safe
def protected_media(request: HttpRequest, path: str) -> HttpResponse:
    viewer = _viewer(request)
    if not is_member(viewer):
        return _denied(request)
    target = media_file(path)
    if target is None or not media_visible_to(viewer, target.relative_to(settings.MEDIA_ROOT).as_posix()):
        raise Http404("No such file.")
    return _send(request, target)


@require_safe
def picture(request: HttpRequest, public_id: str, variant: str = "") -> HttpResponse:
    """An exemplar picture by its opaque id; `variant` "plain" is the un-highlighted image.

    Unknown ids and pictures the user may not see answer the same 404, so the URL space cannot be
    probed. The response carries no file name, date or path: sentinels and top exemplars look alike.
    """
    exemplar = Exemplar.objects.filter(public_id=public_id).first()
    if exemplar is not None and PARAMETER in request.GET and _signed_for(exemplar, request.GET[PARAMETER]):
        return _send_picture(request, exemplar, variant)
    user = _viewer(request)
    if user is None:
        return _denied(request)
    if exemplar is None or not (scope(Exemplar.objects.filter(pk=exemplar.pk), user,
                                      path="unit__layer__job__project").exists()
                                or picture_visible_to(user, exemplar)):
        raise Http404("No such picture.")
    return _send_picture(request, exemplar, variant)


def _signed_for(exemplar: Exemplar, token: str) -> bool:
    """Whether `token` is a live signed link to `exemplar` for a HIT that shows it, or for an open qualification
    attempt whose test shows it."""
    attempt_id = picture_link_attempt(token, public_id=exemplar.public_id)
    if attempt_id is not None:
        unit_ids = (QualificationAttempt.objects.filter(pk=attempt_id, finished_at__isnull=True)
                    .values_list("unit_ids", flat=True).first())
        return (unit_ids is not None and exemplar.unit_id in unit_ids
                and exemplar.pk in {e.pk for e in qualification_exemplars(exemplar.unit_id)})
    hit_id = picture_link_hit(token, public_id=exemplar.public_id)
    hit = Hit.objects.select_related("batch").filter(pk=hit_id).first() if hit_id is not None else None
    return hit is not None and hit.unit_id == exemplar.unit_id and exemplar.pk in {e.pk for e in hit_exemplars(hit)}


def _send_picture(request: HttpRequest, exemplar: Exemplar, variant: str) -> HttpResponse:
    relpath = (exemplar.plain or exemplar.picture) if variant == "plain" else exemplar.picture
    target = media_file(relpath)
    if target is None:
        raise Http404("No such picture.")
    response = _send(request, target, name="picture" + target.suffix.lower())
    # The modification time would tell sentinels (rendered in a later pass) from top exemplars.
    response.headers.pop("Last-Modified", None)
    return response
