"""Signed picture links for workers of an outside crowd (Mechanical Turk, Prolific), who have no session here.

A link is the picture's opaque URL (`/pictures/<public id>`) plus `?sig=<token>`. The token names one HIT
and an expiry, and is signed with the site's key, salted with the picture's public id: it opens that one
picture (and its un-highlighted variant) to whoever holds the link until the expiry, and only while the
picture is one the HIT shows (`annotate_site.media.picture` checks that too). So a link of one HIT
cannot fetch another HIT's picture, nor another picture of the same unit, and a changed id, HIT or expiry
breaks the signature. Every picture of a HIT gets a token of the same shape and expiry: a sentinel's link
looks like any other.

A worker's links expire with their assignment (its deadline); a preview or an exported batch file, which
no assignment stands behind, gets links that expire with the HIT.

An outside worker's qualification test (units/crowd/views/external.py) shows gold units that no HIT stands
for: its links name the attempt instead of a HIT (`["q", attempt id, expiry]`, the same signature), and
open only the pictures that test shows, and only while the attempt is not yet handed in.
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from .models import Hit, QualificationAttempt
from .selectors import ShownPicture, hit_exemplars, qualification_exemplars

SALT = "unitcrowd.picture-link:"
PARAMETER = "sig"


def picture_link_token(*, public_id: str, hit_id: int, expires_at: datetime) -> str:
    # No signing time in it (a plain Signer): the same picture, HIT and expiry always give the same link,
    # so a file written twice is the same file, and browsers cache one URL per picture.
    return signing.Signer(salt=SALT + public_id).sign_object([hit_id, int(expires_at.timestamp())])


def picture_link_hit(token: str, *, public_id: str, now: datetime | None = None) -> int | None:
    """The HIT a link's token opens `public_id` for, or None when it is forged, changed or expired."""
    try:
        hit_id, expires = signing.Signer(salt=SALT + public_id).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(hit_id, int) or not isinstance(expires, int):
        return None
    now = now or timezone.now()
    return hit_id if now.timestamp() < expires else None


def attempt_link_token(*, public_id: str, attempt_id: int, expires_at: datetime) -> str:
    return signing.Signer(salt=SALT + public_id).sign_object(["q", attempt_id, int(expires_at.timestamp())])


def picture_link_attempt(token: str, *, public_id: str, now: datetime | None = None) -> int | None:
    """The qualification attempt a link's token opens `public_id` for, or None (forged, changed, expired, or
    a HIT's link)."""
    try:
        kind, attempt_id, expires = signing.Signer(salt=SALT + public_id).unsign_object(token)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if kind != "q" or not isinstance(attempt_id, int) or not isinstance(expires, int):
        return None
    now = now or timezone.now()
    return attempt_id if now.timestamp() < expires else None


def signed_attempt_pictures(attempt: QualificationAttempt, unit_id: int, *,
                            expires_at: datetime) -> list[ShownPicture]:
    """Signed links to the pictures the attempt's test shows of one of its gold units."""
    shown = []
    for ex in qualification_exemplars(unit_id):
        query = f"?{PARAMETER}=" + attempt_link_token(public_id=ex.public_id, attempt_id=attempt.pk,
                                                      expires_at=expires_at)
        shown.append(ShownPicture(pk=ex.public_id, exemplar_id=ex.pk,
                                  picture_url=reverse("picture", args=[ex.public_id]) + query,
                                  plain_url=reverse("picture_plain", args=[ex.public_id]) + query))
    return shown


def signed_hit_pictures(hit: Hit, *, expires_at: datetime, absolute: bool = False) -> list[ShownPicture]:
    """The HIT's pictures (sentinels mixed in, as `hit_pictures` shows them) with signed links."""
    return signed_pictures(hit, hit_exemplars(hit), expires_at=expires_at, absolute=absolute)


def signed_pictures(hit: Hit, exemplars, *, expires_at: datetime, absolute: bool = False) -> list[ShownPicture]:
    """Signed links to `exemplars`, which must be pictures `hit` shows (others are refused when fetched)."""
    base = settings.SITE_URL if absolute else ""
    shown = []
    for ex in exemplars:
        query = f"?{PARAMETER}=" + picture_link_token(public_id=ex.public_id, hit_id=hit.pk, expires_at=expires_at)
        shown.append(ShownPicture(pk=ex.public_id, exemplar_id=ex.pk,
                                  picture_url=base + reverse("picture", args=[ex.public_id]) + query,
                                  plain_url=base + reverse("picture_plain", args=[ex.public_id]) + query))
    return shown
