"""Verify HITs in a real browser (Playwright driving Debian's Chromium, headless): an annotator answers
three verify HITs with the keys Y, N and U, one HIT after the other, and a held-down key posts once."""
import re

import pytest
from django.db.models import F

from tests.e2e.conftest import ARTIFACTS, current_assignment_id
from tests.e2e.test_browser import count
from tests.factories import PASSWORD, make_job, make_user
from units.crowd.models import Annotation, CrowdSettings
from units.crowd.publishing import PublishSettings
from units.crowd.verify import hit_publish_verify
from units.dissection.models import Unit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(media_root):
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=6, write_pictures=True)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)  # IoU labels worth verifying
    hit_publish_verify(layers=list(job.layer_set.all()), sources=["iou"],
                       settings=PublishSettings.for_verify(assignments_per_hit=1))
    CrowdSettings.objects.update_or_create(pk=1, defaults={"gold_rate": 0.0})
    make_user("vera", qualified=True)
    return job


def test_an_annotator_answers_verify_hits_with_y_n_and_u(live_server, page, site):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "vera")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#start-working")
    answered = []
    for key, verdict in (("y", "yes"), ("n", "no"), ("U", "unsure")):
        page.wait_for_url(re.compile(r"/crowd/assignments/\d+/$"))
        page.wait_for_selector("#proposed-label")
        pk = current_assignment_id(page)
        shown = page.inner_text("#proposed-label").strip()
        assert page.locator("#exemplars img").count() == 6
        if key == "y":
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "verify-form.png"), full_page=True)
        page.keyboard.press(key)
        page.keyboard.press(key)  # a second press while the page leaves must not post again
        page.wait_for_url(lambda url, pk=pk: f"/assignments/{pk}/" not in url)
        annotation = Annotation.objects.get(assignment_id=pk)
        assert annotation.verdict == verdict
        assert annotation.assignment.hit.proposed_label == shown
        answered.append(pk)
    assert Annotation.objects.count() == 3 and len(set(answered)) == 3
    page.goto(f"{live_server.url}/crowd/")
    assert count(page, "submitted") == 3


def _start(live_server, page):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "vera")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#start-working")
    page.wait_for_selector("#proposed-label")
    page.wait_for_load_state("load")  # the page's scripts have run: their handlers and timer are in place
    return current_assignment_id(page)


def test_return_and_skip_on_a_verify_hit_ask_first_and_a_no_keeps_the_hit(live_server, page, site):
    from units.crowd.models import Assignment

    pk = _start(live_server, page)
    asked = []

    def decline(dialog):
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", decline)
    page.click("#return-hit")
    page.click("#skip-hit")
    page.wait_for_timeout(300)
    assert len(asked) == 2 and "Return this HIT?" in asked[0] and "Skip this HIT for good?" in asked[1]
    assert current_assignment_id(page) == pk
    assert Assignment.objects.get(pk=pk).status == Assignment.Status.ACCEPTED
    assert page.locator("h1").count() == 1


def test_a_verify_hit_warns_at_two_minutes_and_thirty_seconds(live_server, page, site):
    page.clock.install()
    _start(live_server, page)
    warning = page.locator("#time-warning")
    assert warning.is_hidden() and warning.get_attribute("aria-live") == "assertive"
    seconds = int(page.get_attribute("#time-left", "data-seconds"))
    page.clock.run_for((seconds - 119) * 1000)
    assert "2 minutes left" in warning.inner_text()
    page.clock.run_for(90 * 1000)
    assert "30 seconds left" in warning.inner_text()
    page.clock.run_for(40 * 1000)
    assert "run out" in warning.inner_text()


def test_a_click_on_a_verify_picture_enlarges_it_in_the_lightbox(live_server, page, site):
    from tests.e2e.test_review_and_qualification import enlarge_and_close

    pk = _start(live_server, page)
    enlarge_and_close(page, "#exemplars a >> nth=2")
    assert current_assignment_id(page) == pk
