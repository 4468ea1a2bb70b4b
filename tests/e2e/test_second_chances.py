"""Second chances on the labelling page in Chromium: undo a skip, take an expired HIT again, extend."""
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.e2e.conftest import answer_confirm, axe_violations, current_assignment_id, log_in, start_working
from tests.factories import make_user
from units.crowd.models import Annotation, Assignment, Skip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kim(site):
    return make_user("kim", qualified=True)


def test_a_skip_can_be_undone_from_the_next_page(live_server, page, kim):
    log_in(page, live_server, "kim")
    first = start_working(page)
    page.keyboard.press("s")
    answer_confirm(page, accept=True)
    page.wait_for_url(lambda url: f"/assignments/{first}/" not in url)
    second = current_assignment_id(page)
    assert page.is_visible("#undo-skip")
    assert axe_violations(page) == []
    page.click("#undo-skip")
    page.wait_for_url(lambda url: f"/assignments/{first}/" in url)
    assert not Skip.objects.exists()
    assert Assignment.objects.get(pk=first).status == "accepted"
    assert not Assignment.objects.filter(pk=second).exists()  # the auto-claimed HIT was let go
    assert not page.is_visible("#undo-skip")


def test_an_expired_hit_can_be_taken_again_and_the_draft_comes_back(live_server, page, kim):
    log_in(page, live_server, "kim")
    pk = start_working(page)
    page.click(".ex:nth-child(2) .mark-toggle")
    page.keyboard.press("4")
    page.fill("#id_word", "crème brûlée")
    Assignment.objects.filter(pk=pk).update(deadline=timezone.now() - timedelta(seconds=1))
    page.click("#submit-answer")
    page.wait_for_selector("#expired")
    assert axe_violations(page) == []
    page.click("#retake")
    page.wait_for_url(lambda url: f"/assignments/{pk}/" in url and "retake" not in url)
    assert Assignment.objects.get(pk=pk).status == "accepted"
    assert Assignment.objects.filter(worker=kim).count() == 1
    assert page.input_value("#id_word") == "crème brûlée"
    assert page.is_checked("input[name=category][value=texture]") and page.is_checked(".ex:nth-child(2) input")
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: f"/assignments/{pk}/" not in url)
    assert Annotation.objects.get(assignment_id=pk).word == "crème brûlée"


def test_extend_shows_near_the_end_keeps_the_draft_and_restarts_the_timer(live_server, page, kim):
    log_in(page, live_server, "kim")
    pk = start_working(page)
    assert page.is_hidden("#extend-form")  # 15 minutes left: not offered yet
    page.fill("#id_word", "zebra")
    Assignment.objects.filter(pk=pk).update(deadline=timezone.now() + timedelta(seconds=100))
    page.reload()
    assert page.is_visible("#extend")
    assert "Extend by 7 minutes 30 seconds" in page.inner_text("#extend-form")  # half of 15 minutes
    assert axe_violations(page) == []
    page.click("#extend")
    page.wait_for_selector("#time-left")
    assert int(page.get_attribute("#time-left", "data-seconds")) > 400
    assert page.query_selector("#extend-form") is None
    assert page.input_value("#id_word") == "zebra"
    assert Assignment.objects.get(pk=pk).extended_at is not None
