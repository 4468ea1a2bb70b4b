"""A fake Mechanical Turk worker site (a small local HTTP server) frames the HIT page in Chromium, as MTurk
does: preview, accept, answer, and the post to its `/mturk/externalSubmit`, which records what arrives.

Screenshots of the preview and the accepted states: test-artifacts/mturk-preview.png, mturk-accepted.png.
"""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode

import pytest

from tests.e2e.conftest import csp_violations, screenshot
from tests.factories import make_mturk_sandbox_hit, make_mturk_sandbox_verify_hit
from units.crowd.models import Annotation, Channel
from units.crowd.mturk import WORKER_SITES
from units.dissection.models import Exemplar

pytestmark = pytest.mark.django_db(transaction=True)


class FakeWorkerSite:
    """MTurk's worker site in miniature: `/frame?<HIT page URL>` frames it; `/mturk/externalSubmit` keeps posts."""

    def __init__(self) -> None:
        self.posts: list[dict[str, list[str]]] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802  (http.server's name)
                target = self.path.split("?", 1)[1] if "?" in self.path else ""
                body = (f'<!doctype html><html lang="en"><title>Fake MTurk</title><h1>Fake MTurk</h1>'
                        f'<iframe id="hit" title="HIT" src="{parse_qs(target)["u"][0]}" width="1100" height="800">'
                        f"</iframe></html>").encode()
                self._answer(200, body)

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                site.posts.append(parse_qs(self.rfile.read(length).decode()))
                self._answer(200, b"<!doctype html><p id='done'>HIT submitted to the fake MTurk.</p>")

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def frame_url(self, hit_page: str) -> str:
        return f"{self.origin}/frame?" + urlencode({"u": hit_page})


@pytest.fixture
def fake_mturk(monkeypatch):
    site = FakeWorkerSite()
    monkeypatch.setitem(WORKER_SITES, Channel.MTURK_SANDBOX, site.origin)
    yield site
    site.server.shutdown()


@pytest.fixture
def mturk_hit(media_root):
    return make_mturk_sandbox_hit(media_root, exemplars_per_unit=5)


def _hit_page(live_server, hit, **params) -> str:
    return f"{live_server.url}/crowd/mturk/hits/{hit.pk}/?" + urlencode({"hitId": "MTHIT0", **params})


def test_a_worker_previews_accepts_answers_and_the_answer_reaches_mturk(live_server, page, fake_mturk, mturk_hit):
    # Preview: pictures and instructions, inputs disabled.
    page.goto(fake_mturk.frame_url(_hit_page(live_server, mturk_hit, assignmentId="ASSIGNMENT_ID_NOT_AVAILABLE")))
    frame = page.frame_locator("#hit")
    frame.locator("#mturk-preview").wait_for()
    images = frame.locator("img")
    assert images.count() == 6
    for i in range(images.count()):  # every picture loaded through its signed link (no session in the frame)
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    assert frame.locator("#id_word").is_disabled()
    assert frame.locator("#mturk-answer-submit").is_disabled()
    screenshot(page, "mturk-preview.png")

    # Accepted: the same page, now with the worker's assignment; answer and submit.
    page.goto(fake_mturk.frame_url(_hit_page(live_server, mturk_hit, assignmentId="ASG1", workerId="W1",
                                             turkSubmitTo=fake_mturk.origin)))
    frame = page.frame_locator("#hit")
    frame.locator("#id_word").fill("dog")
    frame.locator("input[name=category][value=object]").check()
    sentinel = Exemplar.objects.get(unit=mturk_hit.unit, kind="sentinel").public_id
    frame.locator(f"input[name=non_fitting][value='{sentinel}']").check()
    screenshot(page, "mturk-accepted.png")
    frame.locator("#mturk-answer-submit").click()
    frame.locator("#done").wait_for()

    assert len(fake_mturk.posts) == 1
    post = fake_mturk.posts[0]
    assert post["assignmentId"] == ["ASG1"] and post["word"] == ["dog"] and post["category"] == ["object"]
    annotation = Annotation.objects.get(assignment__external_id="ASG1")
    assert (annotation.assignment.worker.username, annotation.word, annotation.sentinels_missed) == ("mturk-W1",
                                                                                                       "dog", 0)
    assert csp_violations(page) == []


def test_the_outside_crowd_pages_pass_axe(live_server, browser, mturk_hit):
    """The HIT page (preview and accepted), and the owners' crowd-channel page with an MTurk batch."""
    from tests.e2e.conftest import DESKTOP, _context, axe_violations, log_in
    from tests.factories import make_user
    from units.projects.models import Membership

    page = _context(browser, DESKTOP).new_page()
    problems = {}
    for params in ({"assignmentId": "ASSIGNMENT_ID_NOT_AVAILABLE"},
                   {"assignmentId": "ASG1", "workerId": "W1", "turkSubmitTo": WORKER_SITES[Channel.MTURK_SANDBOX]}):
        page.goto(_hit_page(live_server, mturk_hit, **params))
        found = axe_violations(page) + [f"CSP: {v}" for v in csp_violations(page)]
        if page.locator("h1").count() != 1:
            found.append("not one <h1>")
        if found:
            problems[str(params)] = found
    owner = make_user("olga", requester=True)
    project = mturk_hit.batch.project
    Membership.objects.update_or_create(project=project, user=owner, defaults={"role": "owner"})
    log_in(page, live_server, owner.username)
    page.goto(f"{live_server.url}/crowd/review/projects/{project.pk}/channels/")
    assert page.locator("h1").inner_text().startswith("Crowd channels of")
    assert page.locator(".channel-sandbox").count() == 1
    if found := axe_violations(page) + [f"CSP: {v}" for v in csp_violations(page)]:
        problems["channels page"] = found
    assert problems == {}


def test_an_unqualified_worker_takes_the_test_in_the_frame_and_a_failure_reaches_mturk_never(
        live_server, page, fake_mturk, mturk_hit):
    """The project's test inside MTurk's frame: failing shows the page that asks to return the HIT (nothing is
    posted to MTurk); passing opens the HIT, whose answer then reaches MTurk. axe checks both test pages.
    Screenshots: test-artifacts/mturk-qualification.png, mturk-qualification-failed.png."""
    from tests.e2e.conftest import axe_violations
    from units.crowd.models import QualificationSettings
    from units.dissection.models import Unit

    from tests.factories import make_job

    project = mturk_hit.batch.project
    job = make_job(project=project, layers={"conv4": 2}, exemplars_per_unit=2, write_pictures=True)
    Unit.objects.filter(layer__job=job).update(is_gold=True, gold_word="tree", gold_category="object")
    QualificationSettings.objects.create(project=project, size=2, pass_fraction=1.0, cooldown_minutes=30)
    problems = {}

    def take_test(worker: str, assignment: str, word: str) -> None:
        page.goto(fake_mturk.frame_url(_hit_page(live_server, mturk_hit, assignmentId=assignment, workerId=worker,
                                                 turkSubmitTo=fake_mturk.origin)))
        frame = page.frame_locator("#hit")
        frame.locator("#qualification-form").wait_for()
        images = frame.locator("img")
        assert images.count() == 4
        for i in range(images.count()):  # the test's pictures load through their signed links too
            assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
        for i in range(frame.locator("input[type=text]").count()):
            frame.locator("input[type=text]").nth(i).fill(word)
        for group in frame.locator("fieldset.qual-unit").all():
            group.locator("input[type=radio][value=object]").check()
        if worker == "W1":
            screenshot(page, "mturk-qualification.png")
        frame.locator("#qualification-submit").click()

    take_test("W1", "ASG1", "car")
    frame = page.frame_locator("#hit")
    frame.locator("#qualification-failed").wait_for()
    assert "return this HIT on Mechanical Turk" in frame.locator("#qualification-failed").inner_text()
    screenshot(page, "mturk-qualification-failed.png")
    assert fake_mturk.posts == []  # nothing handed in, nothing paid for the test alone

    take_test("W2", "ASG2", "tree")
    frame = page.frame_locator("#hit")
    frame.locator("#id_word").fill("dog")
    frame.locator("input[name=category][value=object]").check()
    frame.locator("#mturk-answer-submit").click()
    frame.locator("#done").wait_for()
    assert [post["assignmentId"] for post in fake_mturk.posts] == [["ASG2"]]
    assert csp_violations(page) == []
    for params in ({"assignmentId": "ASG3", "workerId": "W3"}, {"assignmentId": "ASG1", "workerId": "W1"}):
        page.goto(_hit_page(live_server, mturk_hit, turkSubmitTo=WORKER_SITES[Channel.MTURK_SANDBOX], **params))
        if found := axe_violations(page) + [f"CSP: {v}" for v in csp_violations(page)]:
            problems[str(params)] = found
    assert problems == {}


def test_a_verify_hit_in_the_frame_posts_the_verdict_to_mturk_and_passes_axe(live_server, page, fake_mturk,
                                                                              media_root):
    from tests.e2e.conftest import axe_violations

    hit = make_mturk_sandbox_verify_hit()
    page.goto(fake_mturk.frame_url(_hit_page(live_server, hit, assignmentId="ASG1", workerId="W1",
                                             turkSubmitTo=fake_mturk.origin)))
    frame = page.frame_locator("#hit")
    frame.locator("#proposed-label").wait_for()
    images = frame.locator("img")
    assert images.count() == 3
    for i in range(images.count()):
        assert images.nth(i).evaluate("img => img.complete && img.naturalWidth > 0")
    frame.locator("input[name=verdict][value=yes]").check()
    frame.locator("#mturk-answer-submit").click()
    frame.locator("#done").wait_for()
    assert [(post["assignmentId"], post["verdict"]) for post in fake_mturk.posts] == [(["ASG1"], ["yes"])]
    assert csp_violations(page) == []
    page.goto(_hit_page(live_server, hit, assignmentId="ASG2", workerId="W2",
                        turkSubmitTo=WORKER_SITES[Channel.MTURK_SANDBOX]))
    assert axe_violations(page) + [f"CSP: {v}" for v in csp_violations(page)] == []
