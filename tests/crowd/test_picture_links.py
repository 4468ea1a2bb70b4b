"""Signed picture links for outside crowds (units/crowd/picture_links.py), attacked.

The rule: a link opens one picture of one HIT to anyone until it expires, and nothing else: not another
HIT's picture, not another picture of the unit, not after the expiry, not with a byte changed. Sentinels'
links look like everyone else's. The MTurk batch file carries these links, absolute, built from SITE_URL.
"""
from __future__ import annotations

import base64
import csv
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from PIL import Image

from tests.factories import make_hits, make_job, make_user
from units.crowd.models import Annotation, Assignment, Hit
from units.crowd.picture_links import picture_link_hit, picture_link_token, signed_hit_pictures, signed_pictures
from units.crowd.selectors import hit_exemplars
from units.dissection.models import Exemplar

pytestmark = pytest.mark.django_db

LINK_SHAPE = re.compile(r"^/pictures/[A-Za-z0-9_-]{22}\?sig=[A-Za-z0-9_:.-]+$")


@pytest.fixture
def two_hits(media_root):
    """Two HITs of one layer, 4 top pictures and one sentinel each, on disk; the batch mixes one sentinel in."""
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4, write_pictures=True)
    for unit in (u for layer in job.layer_set.all() for u in layer.units.all()):
        rel = f"jobs/{job.pk}/conv3/sentinels/unit_{unit.index + 1:04d}_00.png"
        (media_root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 32), (9, 9, 9)).save(media_root / rel)
        Exemplar.objects.create(unit=unit, kind=Exemplar.Kind.SENTINEL, rank=0, image_index=99,
                                image_name="img99.png", score=0.0, picture=rel, plain=rel)
    hits = make_hits(job, assignments=1)
    hits[0].batch.sentinels = 1
    hits[0].batch.save(update_fields=["sentinels"])
    return [Hit.objects.select_related("batch").get(pk=h.pk) for h in hits]


def _later(minutes: int = 30):
    return timezone.now() + timedelta(minutes=minutes)


def _get(url: str):
    return Client().get(url)  # no session, no token: an MTurk worker's browser


def _body(response) -> bytes:
    return b"".join(response.streaming_content)


def test_a_signed_link_opens_its_picture_and_plain_variant_without_a_session(two_hits, media_root):
    hit = two_hits[0]
    pictures = signed_hit_pictures(hit, expires_at=_later())
    assert len(pictures) == 5  # 4 top + 1 sentinel
    for pic in pictures:
        response = _get(pic.picture_url)
        assert response.status_code == 200, pic
        exemplar = Exemplar.objects.get(public_id=pic.pk)
        assert _body(response) == (media_root / exemplar.picture).read_bytes()
        assert _get(pic.plain_url).status_code == 200
    # The unsigned URL still asks for a session.
    assert _get(pictures[0].picture_url.split("?")[0]).status_code == 403


def test_a_signature_for_one_hit_cannot_fetch_another_hits_picture(two_hits):
    mine, theirs = two_hits
    my_token = signed_hit_pictures(mine, expires_at=_later())[0].picture_url.split("?sig=")[1]
    for pic in signed_hit_pictures(theirs, expires_at=_later()):
        # my token carried over to their picture: the salt (their public id) breaks the signature
        assert _get(f"/pictures/{pic.pk}?sig={my_token}").status_code == 403
        # a token honestly signed for my HIT, but naming their picture: my HIT does not show it
        forged = picture_link_token(public_id=pic.pk, hit_id=mine.pk, expires_at=_later())
        assert _get(f"/pictures/{pic.pk}?sig={forged}").status_code == 403
        assert _get(f"/pictures/{pic.pk}/plain?sig={forged}").status_code == 403


def test_a_signed_link_opens_no_picture_of_the_unit_that_the_hit_does_not_show(two_hits):
    hit = two_hits[0]
    hit.exemplars_shown = 4
    hit.save(update_fields=["exemplars_shown"])
    hidden = Exemplar.objects.create(unit=hit.unit, rank=50, image_index=1, image_name="x", score=0.0,
                                     picture=Exemplar.objects.filter(unit=hit.unit).first().picture)
    assert hidden.pk not in {e.pk for e in hit_exemplars(hit)}
    token = picture_link_token(public_id=hidden.public_id, hit_id=hit.pk, expires_at=_later())
    assert _get(f"/pictures/{hidden.public_id}?sig={token}").status_code == 403


def test_an_expired_signature_is_refused(two_hits):
    hit = two_hits[0]
    expired = signed_hit_pictures(hit, expires_at=timezone.now() - timedelta(seconds=1))
    assert all(_get(p.picture_url).status_code == 403 for p in expired)
    live = signed_hit_pictures(hit, expires_at=_later(10))[0]
    token = live.picture_url.split("?sig=")[1]
    assert picture_link_hit(token, public_id=live.pk) == hit.pk
    assert picture_link_hit(token, public_id=live.pk, now=_later(11)) is None


def _b64(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def test_a_tampered_signature_is_refused(two_hits):
    hit, other = two_hits
    pic = signed_hit_pictures(hit, expires_at=_later())[0]
    token = pic.picture_url.split("?sig=")[1]
    payload, signature = token.split(":")  # django.core.signing.Signer.sign_object: data, signature
    expires = next(e for e in range(int(_later().timestamp()) - 5, int(_later().timestamp()) + 1)
                   if _b64(f"[{hit.pk},{e}]") == payload)  # the payload rebuilt: the forgeries below are well formed
    tampered = [
        token[:-1] + ("A" if token[-1] != "A" else "B"),  # one character of the signature
        f"{_b64(f'[{other.pk},{expires}]')}:{signature}",  # another HIT under the old signature
        f"{_b64(f'[{hit.pk},{expires + 10**8}]')}:{signature}",  # a later expiry
        payload, f"{payload}:",  # no signature at all
        "", "garbage", ":" * 5, "%00",
    ]
    for bad in tampered:
        assert _get(f"/pictures/{pic.pk}?sig={bad}").status_code == 403, bad
    assert _get(pic.picture_url).status_code == 200  # the untouched link still works


def test_a_refused_signature_leaves_a_signed_in_annotator_to_the_session_rules(two_hits):
    hit = two_hits[0]
    client = Client()
    client.force_login(make_user("stranger", qualified=True))
    pic = signed_hit_pictures(hit, expires_at=_later())[0]
    assert client.get(pic.picture_url + "x").status_code == 404  # not theirs, not signed: nothing there


def test_sentinel_links_look_like_any_other(two_hits):
    hit = two_hits[0]
    pictures = signed_hit_pictures(hit, expires_at=_later())
    kinds = {Exemplar.objects.get(public_id=p.pk).kind for p in pictures}
    assert kinds == {"top", "sentinel"}
    assert all(LINK_SHAPE.match(p.picture_url) for p in pictures)
    assert len({len(p.picture_url) for p in pictures}) == 1
    # The token's readable part holds only the HIT and the expiry, the same for every picture of the HIT.
    assert len({p.picture_url.split("?sig=")[1].split(":")[0] for p in pictures}) == 1
    # And a link is the same however often it is made (no signing time in it).
    assert signed_hit_pictures(hit, expires_at=hit.expires_at) == signed_hit_pictures(hit, expires_at=hit.expires_at)


def test_the_mturk_batch_file_links_are_absolute_signed_and_fetchable_by_anyone(two_hits, settings, tmp_path):
    from units.results.exports import write_mturk

    settings.SITE_URL = "https://crowd.example.org"
    hit = two_hits[1]
    worker = make_user("mturk-w1")
    now = timezone.now()
    assignment = Assignment.objects.create(hit=hit, worker=worker, status=Assignment.Status.SUBMITTED,
                                           accepted_at=now, deadline=now + timedelta(minutes=15), submitted_at=now)
    Annotation.objects.create(assignment=assignment, word="dog", category="object")
    write_mturk(tmp_path / "m.csv", Hit.objects.filter(pk=hit.pk))
    with open(tmp_path / "m.csv", newline="", encoding="utf-8-sig") as fh:
        row = next(csv.DictReader(fh))
    urls = row["Input.image_urls"].split("|")
    top = [e.public_id for e in hit_exemplars(hit) if e.kind == "top"]
    assert [u.split("/pictures/")[1].split("?")[0] for u in urls] == top
    for url in urls:
        assert url.startswith("https://crowd.example.org/pictures/") and "?sig=" in url
        assert _get(url.removeprefix("https://crowd.example.org")).status_code == 200
    # They expire with the HIT.
    Hit.objects.filter(pk=hit.pk).update(expires_at=now - timedelta(seconds=1))
    write_mturk(tmp_path / "late.csv", Hit.objects.filter(pk=hit.pk))
    with open(tmp_path / "late.csv", newline="", encoding="utf-8-sig") as fh:
        late = next(csv.DictReader(fh))["Input.image_urls"].split("|")[0]
    assert _get(late.removeprefix("https://crowd.example.org")).status_code == 403


def test_signed_pictures_of_a_verify_or_label_hit_cover_exactly_what_it_shows(two_hits):
    hit = two_hits[0]
    shown = [e.public_id for e in hit_exemplars(hit)]
    assert [p.pk for p in signed_pictures(hit, hit_exemplars(hit), expires_at=_later())] == shown
