"""Second chances on the labelling page in Chromium (issue 12): undo a skip, take an expired HIT again, extend."""
import pytest

from tests.e2e.conftest import axe_violations, current_assignment_id, log_in, start_working
from tests.factories import make_user
from units.crowd.models import Assignment, Skip

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def kim(site):
    return make_user("kim", qualified=True)


def test_a_skip_can_be_undone_from_the_next_page(live_server, page, kim):
    log_in(page, live_server, "kim")
    first = start_working(page)
    page.once("dialog", lambda d: d.accept())
    page.keyboard.press("s")
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
