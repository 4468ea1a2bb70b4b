"""Review with the marked images in view, from the keyboard, and the qualification's feedback, in Chromium."""
import re

import pytest

from tests.e2e.conftest import answer_confirm, axe_violations, log_in, screenshot
from tests.factories import make_user
from tests.results.helpers import answer
from units.crowd.models import AnnotatorProfile, Assignment, Hit
from units.dissection.models import Unit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_reviewer_sees_the_marked_images_and_rejects_from_the_keyboard(live_server, page, site):
    hit = Hit.objects.filter(unit__layer__job=site).order_by("unit__index").first()
    ann1, ann2 = make_user("ann1"), make_user("ann2")
    first = answer(hit, ann1, "crème", "object", non_fitting=(0, 2), description="cups, mostly")
    second = answer(hit, ann2, "blue", "color")
    make_user("rita", requester=True)
    log_in(page, live_server, "rita")
    page.goto(f"{live_server.url}/crowd/review/hits/{hit.pk}/")

    card = page.locator(f"#assignment-{first.assignment_id}")
    assert card.locator("figure.marked").count() == 2
    assert card.locator("figure.marked figcaption").all_inner_texts() == ["1 · not fitting", "3 · not fitting"]
    assert "crème" in card.inner_text() and "cups, mostly" in card.inner_text() and "60 s" in card.inner_text()
    assert page.locator(f"#assignment-{second.assignment_id} figure.marked").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # nothing wider than the page
    assert axe_violations(page) == []
    screenshot(page, "review-hit.png")

    # Keyboard: J to the first answer, X selects it, R rejects; without feedback nothing is sent.
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert page.is_checked(f"#assignment-{first.assignment_id} input[name=assignment_ids]")
    page.keyboard.press("r")
    assert "Write feedback" in page.inner_text(".decide-status")
    assert page.evaluate("document.activeElement.id") == "review-feedback"
    page.keyboard.type("the word names the cups, not the highlighted handles")
    page.keyboard.press("Tab")
    native = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    page.keyboard.press("r")
    assert answer_confirm(page, accept=False).startswith("Reject 1 assignment?")
    page.wait_for_selector("#confirm-dialog:not([open])", state="attached")
    assert Assignment.objects.get(pk=first.assignment_id).status == "submitted"  # cancelled: nothing done
    page.keyboard.press("r")
    assert page.inner_text("#confirm-ok") == "Reject"
    answer_confirm(page, accept=True)
    page.wait_for_load_state()
    page.wait_for_selector(".messages")
    assert native == []  # the page's own dialog, not the browser's confirm()
    assert Assignment.objects.get(pk=first.assignment_id).status == "rejected"
    assert Assignment.objects.get(pk=second.assignment_id).status == "submitted"
    # A click on a picture enlarges it, in the same lightbox as every annotator page.
    enlarge_and_close(page, f"#assignment-{second.assignment_id} figure a >> nth=0")
    assert page.inner_text("#lightbox-caption") == "image 1 of 6"


def enlarge_and_close(page, selector: str) -> None:
    """A click opens the lightbox in this page, the picture large (not the small file in a new tab): the
    picture clicked, as its file is (not a thumbnail), scaled up to at least 256 px."""
    pages_before = len(page.context.pages)
    clicked = page.locator(selector).evaluate("el => (el.querySelector('img') || el).src")
    page.click(selector)
    page.wait_for_selector("#lightbox[open]")
    assert page.eval_on_selector("#lightbox-img", "img => img.src") == clicked
    assert page.locator("#lightbox-img").bounding_box()["width"] >= 256
    assert len(page.context.pages) == pages_before
    page.keyboard.press("Escape")
    page.wait_for_selector("#lightbox:not([open])", state="attached")


def test_a_failed_qualification_says_which_units_were_wrong_the_pass_mark_and_when_to_retake(live_server, page, site):
    make_user("newbie")
    log_in(page, live_server, "newbie")
    page.goto(f"{live_server.url}/crowd/qualification/{site.project_id}/")
    assert "You pass by matching 2 of the 2" in page.inner_text("main")
    names = page.locator("input[name^=word_]").evaluate_all("els => els.map(e => e.name)")
    right = Unit.objects.get(pk=int(names[0].split("_")[1]))
    page.fill(f"input[name={names[0]}]", right.gold_word)
    page.fill(f"input[name={names[1]}]", "giraffe")
    # Digits pick the category of the unit holding the focus, as on the HIT page.
    for name in names:
        page.focus(f"input[name={name.replace('word_', 'category_')}] >> nth=0")
        page.keyboard.press("2")
    enlarge_and_close(page, ".qual-images a >> nth=0")  # click enlarges, as on every page with pictures
    # The word field says, as one types, that it takes at most 60 characters (the server keeps no more).
    counter = page.get_attribute(f"input[name={names[1]}]", "data-counter")
    page.fill(f"input[name={names[1]}]", "g" * 55)
    page.dispatch_event(f"input[name={names[1]}]", "input")
    assert page.inner_text(f"#{counter}") == "55 of 60 characters"
    page.fill(f"input[name={names[1]}]", "giraffe")
    page.dispatch_event(f"input[name={names[1]}]", "input")
    assert page.inner_text(f"#{counter}") == ""
    assert "at most 60 characters" in page.inner_text("main")
    page.click("#qualification-form button[type=submit]")
    page.wait_for_url(re.compile(r"/crowd/qualification/\d+/$"))
    enlarge_and_close(page, "#qualification-feedback .thumbs a >> nth=0")
    feedback = page.inner_text("#qualification-feedback")
    assert "1 of 2 matched; passing needs 2" in feedback
    assert "Unit 1: matched" in feedback and "Unit 2: the word missed (the category was right)" in feedback
    assert "giraffe" in feedback
    assert re.search(r"retake the test in \d+\s+minutes?", feedback)  # a first failure: minutes, not an hour
    assert axe_violations(page) == []
    screenshot(page, "qualification-feedback.png")


def test_bulk_approval_and_blocking_ask_in_the_pages_own_dialog_and_send_the_button_pressed(live_server, page, site):
    hit = Hit.objects.filter(unit__layer__job=site).order_by("unit__index").first()
    ann1 = make_user("ann1")
    first = answer(hit, ann1, "cup", "object")
    make_user("rita", requester=True)
    log_in(page, live_server, "rita")
    native = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))

    # The bulk form has two submit buttons; the one pressed must reach the server after the question.
    page.goto(f"{live_server.url}/crowd/review/")
    page.check(f"#bulk-review input[name=assignment_ids][value='{first.assignment_id}']")
    page.click("#bulk-review button[value=approve]")
    assert answer_confirm(page, accept=True) == "Approve 1 assignment?"
    page.wait_for_selector(".messages")
    assert Assignment.objects.get(pk=first.assignment_id).status == "approved"

    # Block: a button's own question; Cancel leaves the annotator as they were, the action's button blocks them
    # with the reason typed beside it.
    page.goto(f"{live_server.url}/crowd/review/annotators/")
    row = page.locator("tr", has_text="ann1")
    row.locator("input[name=reason]").fill("copies answers")
    row.locator("button[value=block]").click()
    assert answer_confirm(page, accept=False).startswith("Block ann1?")
    page.wait_for_selector("#confirm-dialog:not([open])", state="attached")
    assert not AnnotatorProfile.objects.filter(user=ann1, blocked_at__isnull=False).exists()
    row.locator("button[value=block]").click()
    assert page.inner_text("#confirm-ok") == "Block"
    answer_confirm(page, accept=True)
    page.wait_for_selector(".messages")
    profile = AnnotatorProfile.objects.get(user=ann1)
    assert profile.blocked_at is not None and profile.blocked_reason == "copies answers"
    assert native == []  # the page's own dialog, not the browser's confirm()
    assert axe_violations(page) == []


def test_a_requesters_unit_pages_enlarge_a_picture_in_the_same_lightbox(live_server, page, site):
    unit = Unit.objects.filter(layer__job=site).order_by("index").first()
    make_user("rita", requester=True)
    log_in(page, live_server, "rita")
    # The results page shows all of the unit's pictures in one row; the dissection page its top images, apart
    # from the sentinels.
    top = unit.exemplars.exclude(kind="sentinel").count()
    for path, group in ((f"/results/units/{unit.pk}/", unit.exemplars.count()), (f"/units/{unit.pk}/", top)):
        page.goto(f"{live_server.url}{path}")
        enlarge_and_close(page, ".exemplars a[data-enlarge] >> nth=1")
        assert page.inner_text("#lightbox-caption").endswith(f" 2 of {group}")
        assert axe_violations(page) == []


def test_deleting_a_job_asks_first_and_cancel_keeps_it(live_server, page, media_root):
    from tests.factories import make_job
    from units.dissection.models import DissectionJob

    job = make_job(layers={"conv3": 2}, status=DissectionJob.Status.FAILED)
    make_user("rita", requester=True)
    log_in(page, live_server, "rita")
    native = []
    page.on("dialog", lambda d: (native.append(d.message), d.dismiss()))
    page.goto(f"{live_server.url}/jobs/{job.pk}/")
    page.click("#delete-job button")
    assert answer_confirm(page, accept=False) == f"Delete job {job.pk} and whatever it wrote? This cannot be undone."
    page.wait_for_selector("#confirm-dialog:not([open])", state="attached")
    assert DissectionJob.objects.filter(pk=job.pk).exists()
    page.click("#delete-job button")
    answer_confirm(page, accept=True)
    page.wait_for_selector(".messages")
    assert not DissectionJob.objects.filter(pk=job.pk).exists()
    assert native == []
