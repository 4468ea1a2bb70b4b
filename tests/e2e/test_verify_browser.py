"""Verify HITs in a real browser (Playwright driving Debian's Chromium, headless): an annotator answers
three verify HITs with the keys Y, N and U, one HIT after the other, and a held-down key posts once."""
import re

import pytest

from tests.e2e.conftest import ARTIFACTS, current_assignment_id
from tests.e2e.test_browser import count
from tests.factories import PASSWORD, make_job, make_user
from units.crowd.models import Annotation, CrowdSettings
from units.crowd.publishing import PublishSettings
from units.crowd.verify import hit_publish_verify

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def site(media_root):
    job = make_job(layers={"conv3": 4}, exemplars_per_unit=6, write_pictures=True)
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
