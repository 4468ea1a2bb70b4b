"""Attack surface: every page carries a Content-Security-Policy that allows no inline script but the
request's nonce, and every inline <script>/<style> a page keeps carries that nonce; no inline event
handlers remain (they would be blocked, breaking the page)."""
import base64
import hashlib
import re

import pytest
from django.conf import settings
from django.test import Client

from tests.e2e.test_accessibility import ANNOTATOR_PAGES, SIGNED_OUT_PAGES, requester_pages
from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.crowd.models import Hit

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]

INLINE = re.compile(r"<(script|style)\b([^>]*)>", re.I)
HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.I)


def policy(response) -> dict[str, list[str]]:
    header = response.headers.get("Content-Security-Policy", "")
    return {d.split()[0]: d.split()[1:] for d in header.split(";") if d.strip()}


def problems_of(response) -> list[str]:
    found = []
    csp = policy(response)
    if not csp:
        return ["no Content-Security-Policy header"]
    scripts = csp.get("script-src", csp.get("default-src", []))
    if "'unsafe-inline'" in scripts or "'unsafe-eval'" in scripts or "*" in scripts:
        found.append(f"script-src too wide: {scripts}")
    if csp.get("object-src") != ["'none'"] or csp.get("frame-ancestors") != ["'none'"]:
        found.append("object-src / frame-ancestors not 'none'")
    if "text/html" in response.get("Content-Type", ""):
        html = response.content.decode()
        nonces = {s[len("'nonce-"):-1] for s in scripts if s.startswith("'nonce-")}
        for tag, attrs in INLINE.findall(html):
            if tag.lower() == "script" and "src=" in attrs:
                continue
            nonce = re.search(r'nonce="([^"]+)"', attrs)
            if not nonce or nonce.group(1) not in nonces | {s[len("'nonce-"):-1] for s in csp.get("style-src", [])
                                                              if s.startswith("'nonce-")}:
                found.append(f"inline <{tag}> without the response's nonce")
        if HANDLER.search(html):
            found.append(f"inline event handler: {HANDLER.search(html).group(0)[:80]}")
    return found


@pytest.fixture
def world(media_root):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4, write_pictures=True)
    hits = make_hits(job)
    answer(hits[0], make_user("ann1"), "café", "object")
    return job


def test_every_page_of_every_persona_has_a_strict_policy_and_nonced_inline_blocks(world):
    problems: dict[str, list[str]] = {}
    anonymous = Client()
    for path in SIGNED_OUT_PAGES + ["/api/schema/", "/healthz"]:
        problems[path] = problems_of(anonymous.get(path))
    annotator = Client()
    annotator.force_login(make_user("kim", qualified=True))
    for path in ANNOTATOR_PAGES:
        problems[path] = problems_of(annotator.get(path, follow=True))
    requester = Client()
    requester.force_login(make_user("rita", requester=True))
    for path in requester_pages(world) + ["/api/docs/", "/api/docs/?script=", "/api/jobs/"]:
        problems[path] = problems_of(requester.get(path, follow=True))
    hit = Hit.objects.first()
    problems["review"] = problems_of(requester.get(f"/crowd/review/hits/{hit.pk}/"))
    problems = {k: v for k, v in problems.items() if v}
    assert problems == {}


def test_each_response_gets_its_own_nonce(world):
    client = Client()
    client.force_login(make_user("rita", requester=True))
    first, second = (policy(client.get("/results/")).get("script-src") for _ in range(2))
    assert first != second


def test_the_500_pages_style_is_allowed_by_its_hash():
    html = (settings.BASE_DIR / "templates" / "500.html").read_text()
    style = re.search(r"<style>(.*?)</style>", html, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" == settings.SERVER_ERROR_STYLE_HASH
    assert settings.SERVER_ERROR_STYLE_HASH in settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["style-src"]
