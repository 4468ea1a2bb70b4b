"""An annotator's whole path in a real browser (Playwright driving Debian's Chromium, headless):
sign up, pass the qualification, label three HITs with the keyboard and the mouse, see the counts."""
import re

import pytest

from tests.e2e.conftest import ARTIFACTS, current_assignment_id
from units.crowd.models import Annotation
from units.dissection.models import Unit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def count(page, name: str) -> int:
    return int(page.inner_text(f"#count-{name}").strip())


def test_an_annotator_signs_up_qualifies_and_labels_three_hits(live_server, page, site):
    # Sign up.
    page.goto(f"{live_server.url}/accounts/signup/")
    page.fill("#id_username", "browser-annie")
    page.fill("#id_password1", "a-long-browser-secret-1")
    page.fill("#id_password2", "a-long-browser-secret-1")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/crowd/$"))
    assert page.locator("#start-working").count() == 0

    # Qualification: answer every gold unit right.
    page.click(f"#take-qualification-{site.project_id}")  # the test of the project that offers the HITs
    for name in page.locator("input[name^=word_]").evaluate_all("els => els.map(e => e.name)"):
        unit = Unit.objects.get(pk=int(name.split("_")[1]))
        page.fill(f"input[name={name}]", unit.gold_word)
        page.check(f"input[name=category_{unit.pk}][value=object]")
    page.click("#qualification-form button[type=submit]")
    page.wait_for_url(re.compile(r"/crowd/$"))
    assert "You passed" in page.content()

    # HIT 1, keyboard only: move to the second image, mark it, pick "object" with 2, type the word, Enter.
    page.click("#start-working")
    page.wait_for_url(re.compile(r"/crowd/assignments/\d+/$"))
    first = current_assignment_id(page)
    page.keyboard.press("j")           # focus the first image
    page.keyboard.press("ArrowRight")  # the second
    page.keyboard.press("Space")
    page.keyboard.press("2")
    page.keyboard.press("w")
    page.keyboard.type("seven")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "labelling-form.png"), full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{first}/" not in url)
    a1 = Annotation.objects.get(assignment_id=first)
    assert (a1.word, a1.category) == ("seven", "object")
    ranks = sorted(a1.non_fitting.values_list("rank", flat=True))
    assert ranks == [1]  # the second image shown

    # HIT 2, mouse only: tick "does not fit" under three images (one twice, so it ends unmarked), a category,
    # confidence, submit.
    second = current_assignment_id(page)
    marks = page.locator(".ex .mark-toggle")
    marks.nth(0).click()
    marks.nth(3).click()
    marks.nth(3).click()
    marks.nth(4).click()
    page.click("label:has(input[name=category][value=texture])")
    page.fill("#id_word", "stripes")
    page.fill("#id_description", "diagonal <b>stripes</b>")
    page.click("label[for=id_confidence_4]")
    page.click("#submit-answer")
    page.wait_for_url(lambda url: f"/assignments/{second}/" not in url)
    a2 = Annotation.objects.get(assignment_id=second)
    assert (a2.word, a2.category, a2.confidence, a2.description) == ("stripes", "texture", 5, "diagonal <b>stripes</b>")
    assert sorted(a2.non_fitting.values_list("rank", flat=True)) == [0, 4]

    # HIT 3: toggle plain images with P, "no clear concept" with 6, nothing marked, Enter.
    third = current_assignment_id(page)
    page.keyboard.press("p")
    assert "plain" in (page.get_attribute("#exemplars", "class") or "")
    page.keyboard.press("6")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{third}/" not in url)
    a3 = Annotation.objects.get(assignment_id=third)
    assert (a3.word, a3.category, a3.non_fitting.count()) == ("", "none", 0)

    # Home shows the counts.
    page.goto(f"{live_server.url}/crowd/")
    assert count(page, "submitted") == 3
    assert count(page, "pending") == 3
    assert count(page, "approved") == 0 and count(page, "rejected") == 0
    assert (ARTIFACTS / "labelling-form.png").stat().st_size > 10_000


def test_an_invalid_answer_is_explained_on_the_page(live_server, page, site):
    from tests.factories import PASSWORD, make_user

    make_user("kim", qualified=True)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "kim")
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("#start-working")
    page.wait_for_url(re.compile(r"/crowd/assignments/\d+/$"))
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # no word
    page.wait_for_selector("#form-errors")
    assert "Name the concept" in page.content()
    assert not Annotation.objects.exists()
