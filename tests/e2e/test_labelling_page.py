"""The labelling page in Chromium: keyboard-only work with the focus in view, the timer's
warnings and grace (on Playwright's fake clock, so no test waits minutes), the draft kept across a
reload and an expiry, the error summary, return/skip keys, the legend, the lightbox, and the phone layout."""
import re
from datetime import timedelta

import pytest
from playwright.sync_api import expect
from django.utils import timezone

from tests.e2e.conftest import (
    answer_confirm,
    axe_violations,
    csp_violations,
    current_assignment_id,
    log_in,
    screenshot,
    start_working,
)
from tests.e2e.test_review_and_qualification import enlarge_and_close
from tests.factories import make_user
from units.crowd.models import Annotation, Assignment, Skip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kim(site):
    return make_user("kim", qualified=True)


def style(page, selector: str, prop: str) -> str:
    return page.eval_on_selector(selector, f"el => getComputedStyle(el).{prop}")


def focused_image_number(page) -> str | None:
    return page.evaluate("() => { const el = document.activeElement;"
                         " return el && el.closest('.ex') ? el.closest('.ex').querySelector('.num').textContent : "
                         "null; }")


def test_keyboard_only_labelling_keeps_the_focus_visible_on_a_marked_image(live_server, page, kim):
    log_in(page, live_server, "kim")
    first = start_working(page)
    page.keyboard.press("j")
    page.keyboard.press("ArrowRight")
    assert focused_image_number(page) == "2"
    page.keyboard.press("Space")
    second = ".ex:nth-child(2)"
    # Marked: the red border; focused: an outline outside it. Both at once.
    assert style(page, second, "borderTopColor") == "rgb(192, 57, 43)"
    assert style(page, second, "outlineStyle") == "solid" and style(page, second, "outlineWidth") == "3px"
    assert style(page, second, "outlineColor") != style(page, second, "borderTopColor")
    assert page.is_visible(f"{second} .mark")
    page.keyboard.press("ArrowRight")  # the focus moves on: the ring goes with it, the mark stays
    assert style(page, second, "outlineStyle") == "none"
    assert style(page, second, "borderTopColor") == "rgb(192, 57, 43)"
    assert focused_image_number(page) == "3"
    screenshot(page, "labelling-focus-and-mark.png")

    page.keyboard.press("2")
    page.keyboard.press("w")
    page.keyboard.type("café & crème")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{first}/" not in url)
    annotation = Annotation.objects.get(assignment_id=first)
    assert (annotation.word, annotation.category) == ("café & crème", "object")
    assert list(annotation.non_fitting.values_list("rank", flat=True)) == [1]  # image 2 as shown = rank 1


def test_the_timer_warns_at_two_minutes_and_thirty_seconds_then_grants_a_grace(live_server, page, kim):
    log_in(page, live_server, "kim")
    page.clock.install()  # the page's Date and timers run on Playwright's clock; the server's deadline is real
    pk = start_working(page)
    warning = page.locator("#time-warning")
    assert warning.get_attribute("aria-live") == "assertive" and warning.is_hidden()
    seconds = int(page.get_attribute("#time-left", "data-seconds"))  # 15 minutes, less a moment
    grace = 20
    page.clock.run_for((seconds - grace - 119) * 1000)
    assert "2 minutes left" in warning.inner_text()
    assert "warn" in page.get_attribute("#hit-bar", "class")
    page.clock.run_for(90 * 1000)
    assert "30 seconds left" in warning.inner_text()
    assert "urgent" in page.get_attribute("#hit-bar", "class")
    page.keyboard.press("3")
    page.fill("#id_word", "late but typed")
    page.clock.run_for(30 * 1000)
    assert page.inner_text("#time-left") == "0 min 0 s"
    assert "Time is up" in warning.inner_text()
    screenshot(page, "timer-grace.png")
    # The form is still there and takes the typed answer: the shown clock ended before the server's deadline.
    assert page.is_enabled("#submit-answer") and page.is_editable("#id_word")
    page.press("#id_word", "Enter")
    page.wait_for_url(lambda url: f"/assignments/{pk}/" not in url)
    assert Annotation.objects.get(assignment_id=pk).word == "late but typed"


def test_the_draft_survives_a_reload_and_an_expiry_and_goes_once_submitted(live_server, page, kim):
    log_in(page, live_server, "kim")
    pk = start_working(page)
    page.click(".ex:nth-child(3) .mark-toggle")
    page.keyboard.press("4")
    page.fill("#id_word", "Ελληνικά")
    page.fill("#id_description", "half typed")
    page.reload()
    assert page.input_value("#id_word") == "Ελληνικά"
    assert page.input_value("#id_description") == "half typed"
    assert page.is_checked("input[name=category][value=texture]")
    assert page.is_checked(".ex:nth-child(3) input") and not page.is_checked(".ex:nth-child(1) input")
    assert "restored" in page.inner_text("#draft-status")

    # The deadline passes on the server: the submit is refused, the draft is not lost.
    Assignment.objects.filter(pk=pk).update(deadline=timezone.now() - timedelta(seconds=1))
    page.click("#submit-answer")
    page.wait_for_selector("#expired")  # the expiry page (it offers the HIT again: tests/e2e/test_second_chances.py)
    assert "ran out" in page.content()
    kept = page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('unitcrowd-draft-'))"
                         ".map(k => JSON.parse(localStorage.getItem(k)).word)")
    assert kept == ["Ελληνικά"]
    assert not Annotation.objects.filter(assignment_id=pk).exists()

    # A HIT handed in drops its draft.
    page.click("text=Back to your work")
    nxt = start_working(page)
    page.keyboard.press("6")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{nxt}/" not in url)
    drafts = page.evaluate("() => Object.keys(localStorage).filter(k => k.startsWith('unitcrowd-draft-'))")
    hit_of_next = Assignment.objects.get(pk=nxt).hit_id
    assert all(not k.endswith(f"-hit-{hit_of_next}") for k in drafts)
    # The last HIT of a sitting leads home, which drops the draft too (and only that one).
    page.evaluate("localStorage.setItem('unitcrowd-draft-9-hit-999', JSON.stringify({word: 'x', saved: Date.now()}))")
    page.goto(f"{live_server.url}/crowd/?done=999")
    assert page.evaluate("localStorage.getItem('unitcrowd-draft-9-hit-999')") is None
    assert page.evaluate("Object.keys(localStorage).filter(k => "
                         "k.startsWith('unitcrowd-draft-')).length") == len(drafts)


def test_a_refused_answer_is_summarised_on_top_and_takes_the_focus(live_server, page, kim):
    log_in(page, live_server, "kim")
    start_working(page)
    page.keyboard.press("2")
    page.keyboard.press("Enter")  # no word
    page.wait_for_selector("#form-errors")
    assert page.evaluate("document.activeElement.id") == "form-errors"
    summary = page.inner_text("#form-errors")
    assert "Word:" in summary and "Name the concept" in summary
    box = page.locator("#form-errors").bounding_box()
    assert box["y"] >= 0 and box["y"] + box["height"] <= 900  # in view, not below the fold
    page.click("#form-errors a[href='#id_word']")
    page.keyboard.type("seven")
    assert page.input_value("#id_word") == "seven"


def test_return_and_skip_have_keys_ask_first_and_lead_to_the_next_hit(live_server, page, kim):
    log_in(page, live_server, "kim")
    first = start_working(page)

    page.keyboard.press("?")
    assert page.is_visible("#shortcuts")
    assert "skip the HIT for good" in page.inner_text("#shortcuts")
    page.keyboard.press("Escape")
    assert page.is_hidden("#shortcuts")

    page.keyboard.press("s")
    answer_confirm(page, accept=False)
    page.keyboard.press("s")  # Enter or Esc at once changes nothing either: Cancel has the focus
    page.wait_for_selector("#confirm-dialog[open]")
    page.keyboard.press("Enter")
    page.keyboard.press("s")
    page.wait_for_selector("#confirm-dialog[open]")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)  # a cancelled question leaves the page as it was
    assert page.is_hidden("#confirm-dialog")
    assert current_assignment_id(page) == first
    assert not Skip.objects.exists()

    page.keyboard.press("s")
    assert "never see it again" in answer_confirm(page, accept=True)
    page.wait_for_url(lambda url: f"/assignments/{first}/" not in url)
    assert Skip.objects.filter(hit__assignments__pk=first).exists()
    second = current_assignment_id(page)

    page.click("#return-hit")
    assert "Return this HIT?" in answer_confirm(page, accept=True)
    page.wait_for_url(lambda url: f"/assignments/{second}/" not in url)
    assert Assignment.objects.get(pk=second).status == "returned"
    assert re.search(r"/crowd/assignments/\d+/", page.url)  # the same destination as skip: the next HIT


def test_the_lightbox_enlarges_moves_and_marks(live_server, page, kim):
    log_in(page, live_server, "kim")
    start_working(page)
    page.keyboard.press("j")
    page.keyboard.press("z")
    assert page.is_visible("#lightbox")
    assert page.locator("#lightbox-img").bounding_box()["width"] > 400
    page.keyboard.press("ArrowRight")
    assert page.inner_text("#lightbox-caption").startswith("image 2 of 6")
    page.keyboard.press("Space")
    assert "marked" in page.inner_text("#lightbox-caption")
    page.keyboard.press("Escape")
    assert page.is_hidden("#lightbox")
    assert page.is_checked(".ex:nth-child(2) input")
    # The focus comes back on the image last shown (the dialog's own restore happens first).
    expect(page.locator(".ex:focus-within .num")).to_have_text("2")


def test_on_a_phone_three_pictures_a_row_big_targets_and_the_submit_bar_stays(live_server, phone, kim):
    log_in(phone, live_server, "kim")
    start_working(phone)
    boxes = [phone.locator(".ex").nth(i).bounding_box() for i in range(4)]
    assert boxes[0]["y"] == boxes[1]["y"] == boxes[2]["y"] < boxes[3]["y"]
    assert all(b["x"] + b["width"] <= 390 for b in boxes)
    for label in phone.locator(".categories label").all():
        box = label.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44
    assert phone.locator(".categories input").first.bounding_box()["width"] >= 24
    # Sticky: with the page at its top, the submit button is on screen.
    phone.evaluate("window.scrollTo(0, 0)")
    submit = phone.locator("#submit-answer").bounding_box()
    assert submit["y"] + submit["height"] <= 844
    phone.evaluate("window.scrollTo(0, document.body.scrollHeight / 3)")
    submit = phone.locator("#submit-answer").bounding_box()
    assert submit["y"] >= 0 and submit["y"] + submit["height"] <= 844
    screenshot(phone, "phone-labelling.png")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # nothing wider than the screen
    assert axe_violations(phone) == []
    phone.goto(f"{live_server.url}/crowd/")
    screenshot(phone, "phone-home.png")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    assert axe_violations(phone) == []


def test_w_after_a_refused_answer_replaces_the_word_instead_of_gluing_to_it(live_server, page, kim):
    log_in(page, live_server, "kim")
    first = start_working(page)
    page.keyboard.press("w")
    page.keyboard.type("tree")
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")  # no category: refused, and the page comes back holding "tree"
    page.wait_for_selector("#form-errors")
    assert page.input_value("#id_word") == "tree"
    page.keyboard.press("2")
    page.keyboard.press("w")
    page.keyboard.type("café crème")
    assert page.input_value("#id_word") == "café crème"
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{first}/" not in url)
    assert Annotation.objects.get(assignment_id=first).word == "café crème"


def test_w_on_a_restored_draft_selects_the_word_so_arrows_can_keep_it(live_server, page, kim):
    log_in(page, live_server, "kim")
    start_working(page)
    page.keyboard.press("w")
    page.keyboard.type("tree")
    page.keyboard.press("Escape")
    page.reload()  # the draft comes back from the browser's storage
    expect(page.locator("#id_word")).to_have_value("tree")
    page.keyboard.press("w")
    page.keyboard.press("End")
    page.keyboard.type(" bark")
    assert page.input_value("#id_word") == "tree bark"


def in_view(page, selector: str) -> bool:
    box = page.locator(selector).bounding_box()
    viewport = page.viewport_size
    return bool(box) and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


def test_timer_warnings_and_extend_are_in_view_while_typing_the_word(live_server, page, kim):
    """At 1280x900 the word field is below the top bar's warning: the warning and Extend must show
    beside the field and the submit button too."""
    log_in(page, live_server, "kim")
    page.clock.install()
    start_working(page)
    page.keyboard.press("w")
    page.keyboard.type("zebr")
    page.evaluate("document.querySelector('#id_word').scrollIntoView({block: 'center'})")
    seconds = int(page.get_attribute("#time-left", "data-seconds"))
    page.clock.run_for((seconds - 20 - 29) * 1000)  # 30 seconds left on the shown clock (20 s of grace)
    assert in_view(page, "#id_word")
    assert "30 seconds left" in page.inner_text("#bar-warning") and in_view(page, "#bar-warning")
    assert in_view(page, "#submit-answer")
    assert page.is_visible("#extend-near") and in_view(page, "#extend-near")
    screenshot(page, "timer-warning-near-the-field.png")
    page.clock.run_for(60 * 1000)
    assert "run out" in page.inner_text("#bar-warning") and in_view(page, "#bar-warning")


def test_the_word_field_says_it_is_full_instead_of_cutting_silently(live_server, page, kim):
    log_in(page, live_server, "kim")
    start_working(page)
    limit = int(page.get_attribute("#id_word", "maxlength"))
    page.keyboard.press("w")
    page.keyboard.type("a" * (limit - 12))
    assert page.inner_text("#word-count") == ""
    page.keyboard.type("b" * 4)
    assert page.inner_text("#word-count") == f"{limit - 8} of {limit} characters"
    page.keyboard.type("c" * 20)
    assert page.input_value("#id_word") == "a" * (limit - 12) + "bbbb" + "c" * 8
    assert "the field takes no more" in page.inner_text("#word-count")
    assert page.get_attribute("#word-count", "aria-live") == "polite"


def test_a_click_on_a_picture_enlarges_it_and_the_visible_box_under_it_marks_it(live_server, page, kim):
    """One rule on every page with pictures: a click enlarges. Marking is the "does not fit" box."""
    log_in(page, live_server, "kim")
    pk = start_working(page)
    enlarge_and_close(page, ".ex:nth-child(3) img")
    assert page.locator(".ex input:checked").count() == 0  # the click marked nothing
    mark = page.locator(".ex:nth-child(3) .mark-toggle")
    assert mark.is_visible() and mark.inner_text().strip() == "does not fit"
    assert page.locator("#mark-3").is_visible()
    mark.click()
    assert page.is_checked("#mark-3") and page.locator(".ex:nth-child(3).marked").count() == 1
    # The boxes are Tab stops one after the other (the pictures' links are not: Z enlarges from the box).
    page.focus("#mark-1")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "mark-2"
    # The lightbox's own button marks the picture it shows.
    page.click(".ex:nth-child(4) img")
    page.wait_for_selector("#lightbox[open]")
    assert page.inner_text("#lightbox-caption") == "image 4 of 6"
    page.click("#lightbox-mark")
    assert page.get_attribute("#lightbox-mark", "aria-pressed") == "true"
    assert page.inner_text("#lightbox-caption") == "image 4 of 6 (marked: does not fit)"
    page.keyboard.press("Escape")
    assert page.is_checked("#mark-4")
    # Playwright's own matcher (no page-side eval, which the CSP forbids while it polls).
    expect(page.locator("#mark-4")).to_be_focused()
    assert csp_violations(page) == [] and axe_violations(page) == []
    page.keyboard.press("2")
    page.keyboard.press("w")
    page.keyboard.type("nine")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{pk}/" not in url)
    assert sorted(Annotation.objects.get(assignment_id=pk).non_fitting.values_list("rank", flat=True)) == [2, 3]
