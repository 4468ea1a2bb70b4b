"""Requesters' pages: bulk review, annotators' actions, gold units."""
import pytest
from django.urls import reverse

from tests.factories import make_user
from units.crowd.models import AnnotatorProfile, Assignment, Qualification
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


def test_a_refused_rejection_keeps_the_selection_ticked(rita, annotator, hits):
    ids = submitted(annotator, 2)
    hit_id = Assignment.objects.get(pk=ids[0]).hit_id
    back = reverse("crowd:review_hit", args=[hit_id])
    response = rita.post(reverse("crowd:review_decide"), {"assignment_ids": ids, "action": "reject", "next": back})
    assert response["Location"] == f"{back}?selected={ids[0]},{ids[1]}"
    page = rita.get(response["Location"]).content.decode()
    assert f'value="{ids[0]}" aria-label="select assignment {ids[0]}" checked' in page
    listing = rita.post(reverse("crowd:review_decide"), {"assignment_ids": ids, "action": "reject"})
    page = rita.get(listing["Location"]).content.decode()
    assert all(f'value="{pk}" aria-label="select assignment {pk}" checked' in page for pk in ids)
    assert set(Assignment.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"submitted"}


def test_the_review_page_crosses_out_the_images_each_annotator_marked(rita, annotator, other_annotator, hits):
    from units.crowd.selectors import hit_exemplars

    a = assignment_claim(worker=annotator)
    shown = hit_exemplars(a.hit)
    annotation_submit(assignment_id=a.pk, worker=annotator, word="café", category="object",
                      non_fitting=[shown[0].pk, shown[2].pk], description="mostly cups")
    page = rita.get(reverse("crowd:review_hit", args=[a.hit_id])).content.decode()
    item = page.split(f'id="assignment-{a.pk}"')[1].split("</article>")[0]
    assert item.count('<figure class="marked">') == 2
    assert 'alt="image 1, marked as not fitting"' in item and 'alt="image 3, marked as not fitting"' in item
    assert 'alt="image 2"' in item
    assert "café" in item and "mostly cups" in item and "0 approved, 0 rejected, 1 waiting" in item


def test_the_annotators_page_qualifies_and_blocks(rita, requester, hits):
    newbie = make_user("newbie")
    page = rita.get(reverse("crowd:annotators")).content.decode()
    assert "newbie" in page and "rita" not in page.split("<tbody>")[1]
    project = hits[0].batch.project
    rita.post(reverse("crowd:annotator_action", args=[newbie.pk]), {"action": "qualify", "project": project.pk})
    qualification = Qualification.objects.get(user=newbie)
    assert qualification.project == project and qualification.qualified_manually_by == requester
    assert "newbie" in rita.get(reverse("crowd:annotators")).content.decode().split("Unqualify")[0]
    profile = AnnotatorProfile.objects.get(user=newbie)
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
    assert page.status_code == 404
    client.force_login(make_user("newbie"))
    test_page = reverse("crowd:qualification_test", args=[hits[0].batch.project_id])
    assert 'name="word_' in client.get(test_page).content.decode()


def test_an_out_of_range_assignment_id_is_refused_with_a_message(rita, annotator, hits):
    ids = submitted(annotator, 1)
    response = rita.post(reverse("crowd:review_decide"), {"assignment_ids": [str(2**70)], "action": "approve"},
                         follow=True)
    assert response.status_code == 200
    assert "not one of the available choices" in response.content.decode()
    assert Assignment.objects.get(pk=ids[0]).status == "submitted"
