"""Requesters' pages: bulk review, annotators' actions, gold units."""
import pytest
from django.urls import reverse

from tests.factories import make_user
from units.crowd.models import AnnotatorProfile, Assignment
from units.crowd.services import annotation_submit, assignment_claim
from units.dissection.models import Unit

pytestmark = pytest.mark.django_db


@pytest.fixture
def rita(client, requester):
    client.force_login(requester)
    return client


def submitted(worker, n):
    out = []
    for _ in range(n):
        a = assignment_claim(worker=worker)
        annotation_submit(assignment_id=a.pk, worker=worker, word="seven", category="object")
        out.append(a.pk)
    return out


def test_bulk_approval_from_the_review_page(rita, annotator, hits):
    ids = submitted(annotator, 3)
    page = rita.get(reverse("crowd:review_list")).content.decode()
    assert all(f'value="{pk}"' in page for pk in ids)
    response = rita.post(reverse("crowd:review_decide"), {"assignment_ids": ids[:2], "action": "approve"},
                         follow=True)
    assert "Approved 2 assignment(s)" in response.content.decode()
    assert list(Assignment.objects.filter(pk__in=ids).order_by("pk").values_list("status", flat=True)) == [
        "approved", "approved", "submitted"]


def test_a_rejection_without_feedback_is_refused_with_a_message(rita, annotator, hits):
    ids = submitted(annotator, 1)
    response = rita.post(reverse("crowd:review_decide"), {"assignment_ids": ids, "action": "reject"}, follow=True)
    assert "why" in response.content.decode()
    assert Assignment.objects.get(pk=ids[0]).status == "submitted"


def test_the_annotators_page_qualifies_and_blocks(rita, requester, hits):
    newbie = make_user("newbie")
    page = rita.get(reverse("crowd:annotators")).content.decode()
    assert "newbie" in page and "rita" not in page.split("<tbody>")[1]
    rita.post(reverse("crowd:annotator_action", args=[newbie.pk]), {"action": "qualify"})
    profile = AnnotatorProfile.objects.get(user=newbie)
    assert profile.is_qualified and profile.qualified_manually_by == requester
    a = assignment_claim(worker=newbie)
    rita.post(reverse("crowd:annotator_action", args=[newbie.pk]), {"action": "block", "reason": "bots"})
    profile.refresh_from_db()
    assert profile.is_blocked and profile.blocked_reason == "bots"
    assert Assignment.objects.get(pk=a.pk).status == "abandoned"


def test_the_gold_page_marks_a_unit_and_the_qualification_can_then_run(rita, client, hits):
    unit = hits[0].unit
    response = rita.post(reverse("crowd:gold"), {"unit_id": unit.pk, "gold_word": "7", "gold_category": "object"},
                         follow=True)
    assert "is now gold" in response.content.decode()
    assert Unit.objects.get(pk=unit.pk).gold_word == "7"
    page = rita.post(reverse("crowd:gold"), {"unit_id": 999999, "gold_word": "7", "gold_category": "object"})
    assert "no unit with id 999999" in page.content.decode()
    client.force_login(make_user("newbie"))
    assert 'name="word_' in client.get(reverse("crowd:qualification")).content.decode()


def test_an_out_of_range_assignment_id_is_refused_with_a_message(rita, annotator, hits):
    ids = submitted(annotator, 1)
    response = rita.post(reverse("crowd:review_decide"), {"assignment_ids": [str(2**70)], "action": "approve"},
                         follow=True)
    assert response.status_code == 200
    assert "not one of the available choices" in response.content.decode()
    assert Assignment.objects.get(pk=ids[0]).status == "submitted"
