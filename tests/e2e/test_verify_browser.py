"""Verify HITs in a real browser (Playwright driving Debian's Chromium, headless): an annotator answers
three verify HITs with the keys Y, N and U then Enter, one HIT after the other; a key alone only chooses,
and a held-down Enter posts once."""
import re

import pytest
from django.db.models import F

from tests.e2e.conftest import ARTIFACTS, answer_confirm, axe_violations, current_assignment_id
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
        page.wait_for_load_state("load")
        pk = current_assignment_id(page)
        shown = page.inner_text("#proposed-label").strip()
        assert page.locator("#exemplars img").count() == 6
        page.keyboard.press("u" if key != "U" else "y")  # a stray key only chooses: nothing is sent
        page.keyboard.press(key)
        page.wait_for_timeout(200)
        assert current_assignment_id(page) == pk and not Annotation.objects.filter(assignment_id=pk).exists()
        assert page.is_checked(f"#verdict-{verdict}")
        assert f"Your answer: {verdict}" in page.inner_text("#chosen")
        if key == "y":
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "verify-form.png"), full_page=True)
        page.keyboard.press("Enter")
        page.keyboard.press("Enter")  # a second press while the page leaves must not post again
        page.wait_for_url(lambda url, pk=pk: f"/assignments/{pk}/" not in url)
        annotation = Annotation.objects.get(assignment_id=pk)
        assert annotation.verdict == verdict
        assert annotation.assignment.hit.proposed_label == shown
        answered.append(pk)
    assert Annotation.objects.count() == 3 and len(set(answered)) == 3
    page.goto(f"{live_server.url}/crowd/")
    assert count(page, "submitted") == 3


def test_enter_before_a_choice_asks_for_one_and_sends_nothing(live_server, page, site):
    pk = _start(live_server, page)
    page.keyboard.press("Enter")
    assert "Choose yes, no or unsure first" in page.inner_text("#chosen")
    page.click("label[for=verdict-no]")  # a click chooses too, and sends nothing either
    page.wait_for_timeout(200)
    assert current_assignment_id(page) == pk and not Annotation.objects.exists()
    page.click("#submit-verdict")
    page.wait_for_url(lambda url: f"/assignments/{pk}/" not in url)
    assert Annotation.objects.get(assignment_id=pk).verdict == "no"


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
    native = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    asked = []
    page.click("#return-hit")
    page.wait_for_selector("#confirm-dialog[open]")
    assert axe_violations(page) == [] and page.inner_text("#confirm-ok") == "Return it"
    asked.append(answer_confirm(page, accept=False))
    page.click("#skip-hit")
    asked.append(answer_confirm(page, accept=False))
    page.keyboard.press("r")  # the keys of the labelling page, asking the same
    asked.append(answer_confirm(page, accept=False))
    page.keyboard.press("s")
    asked.append(answer_confirm(page, accept=False))
    page.wait_for_timeout(300)
    assert "Return this HIT?" in asked[0] and "Skip this HIT for good?" in asked[1] and asked[2:] == asked[:2]
    assert native == []  # the page's own dialog, not the browser's confirm()
    assert current_assignment_id(page) == pk
    assert Assignment.objects.get(pk=pk).status == Assignment.Status.ACCEPTED
    assert page.locator("h1").count() == 1


def test_a_verify_hit_warns_at_two_minutes_and_thirty_seconds_beside_the_answer(live_server, page, site):
    from tests.e2e.test_labelling_page import in_view

    page.clock.install()
    _start(live_server, page)
    warning = page.locator("#time-warning")
    assert warning.is_hidden() and warning.get_attribute("aria-live") == "assertive"
    seconds = int(page.get_attribute("#time-left", "data-seconds"))
    grace = 20  # the shown clock ends before the server's deadline, as on the labelling page
    page.clock.run_for((seconds - grace - 119) * 1000)
    assert "2 minutes left" in warning.inner_text()
    page.keyboard.press("y")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")  # the top bar is out of view
    page.clock.run_for(90 * 1000)
    assert "30 seconds left" in warning.inner_text()
    assert "30 seconds left" in page.inner_text("#bar-warning") and in_view(page, "#bar-warning")
    page.clock.run_for(30 * 1000)
    assert "Time is up" in page.inner_text("#bar-warning") and in_view(page, "#submit-verdict")
    page.clock.run_for(grace * 1000)
    assert "run out" in warning.inner_text() and "run out" in page.inner_text("#bar-warning")


def test_a_click_on_a_verify_picture_enlarges_it_in_the_lightbox(live_server, page, site):
    from tests.e2e.test_review_and_qualification import enlarge_and_close

    pk = _start(live_server, page)
    enlarge_and_close(page, "#exemplars a >> nth=2")
    assert current_assignment_id(page) == pk
    page.keyboard.press("y")  # the keys are the page's again once the lightbox is closed
    assert page.is_checked("#verdict-yes") and not Annotation.objects.exists()


def test_a_new_annotator_is_steered_to_verify_work_and_stays_in_it(live_server, page, site):
    from tests.e2e.conftest import log_in
    from tests.factories import make_hits
    from units.crowd.models import Hit

    make_hits(site, assignments=1)  # label HITs too: the home offers both kinds
    log_in(page, live_server, "vera")
    page.wait_for_load_state("load")
    assert page.inner_text("#kind-left-verify") == str(Hit.objects.filter(kind="verify").count())
    assert page.inner_text("#kind-left-label") == str(Hit.objects.filter(kind="label").count())
    assert page.is_visible("#start-label") and "recommended to start" in page.inner_text("#kind-verify")
    assert page.evaluate("document.activeElement.id") == "start-verify"  # Enter starts verify work
    assert axe_violations(page) == []
    page.keyboard.press("Enter")
    for _ in range(2):
        page.wait_for_selector("#proposed-label")
        page.wait_for_load_state("load")
        pk = current_assignment_id(page)
        page.keyboard.press("y")
        page.keyboard.press("Enter")
        page.wait_for_url(lambda url, pk=pk: f"/assignments/{pk}/" not in url)
    assert [a.assignment.hit.kind for a in Annotation.objects.all()] == ["verify", "verify"]


def test_on_a_phone_the_verify_hit_fits_with_big_targets_and_the_submit_bar_stays(live_server, phone, site):
    from tests.e2e.conftest import log_in, screenshot

    log_in(phone, live_server, "vera")
    phone.click("#start-verify")
    phone.wait_for_selector("#proposed-label")
    phone.wait_for_load_state("load")
    for choice in phone.locator(".verdict").all():
        box = choice.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44
    phone.evaluate("window.scrollTo(0, 0)")
    submit = phone.locator("#submit-verdict").bounding_box()
    assert submit["y"] >= 0 and submit["y"] + submit["height"] <= 844  # sticky: on screen from the top
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(phone) == []
    screenshot(phone, "phone-verify.png")
