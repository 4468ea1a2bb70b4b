"""Taking a HIT again after one's own assignment of it expired: exactly that case, never two slots."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_user
from units.crowd.annotators import annotator_block
from units.crowd.errors import Conflict, NotAllowed, NotFound
from units.crowd.models import Assignment
from units.crowd.services import (
    annotation_submit, assignment_claim, assignment_retake, assignment_return, assignments_reclaim_expired, hit_skip,
)

pytestmark = pytest.mark.django_db


def expire(assignment, *, sweep=True):
    Assignment.objects.filter(pk=assignment.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    if sweep:
        assert assignments_reclaim_expired() >= 1


@pytest.mark.parametrize("sweep", [True, False], ids=["swept", "not-yet-swept"])
def test_an_expired_assignment_comes_back_as_the_same_row(annotator, hits, sweep):
    a = assignment_claim(worker=annotator)
    expire(a, sweep=sweep)
    again = assignment_retake(assignment_id=a.pk, worker=annotator)
    assert again.pk == a.pk and again.status == Assignment.Status.ACCEPTED
    assert again.deadline > timezone.now() + timedelta(seconds=590)
    assert Assignment.objects.filter(worker=annotator).count() == 1
    assert assignment_claim(worker=annotator) == again
    annotation_submit(assignment_id=a.pk, worker=annotator, word="dog", category="object")
    assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.SUBMITTED


def test_no_retake_when_the_slots_went_to_others(annotator, hits):
    a = assignment_claim(worker=annotator)
    expire(a)
    for _ in range(2):  # max_assignments is 2
        other = make_user(qualified=True)
        while (b := assignment_claim(worker=other)).hit_id != a.hit_id:
            annotation_submit(assignment_id=b.pk, worker=other, word="x", category="object")
    with pytest.raises(Conflict, match="no free slot"):
        assignment_retake(assignment_id=a.pk, worker=annotator)
    assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.ABANDONED
    assert Assignment.objects.filter(hit=a.hit, status__in=Assignment.SLOT_STATUSES).count() == 2


def test_only_the_own_expired_assignment_and_nothing_else(annotator, hits):
    a = assignment_claim(worker=annotator)
    with pytest.raises(Conflict, match="still running"):
        assignment_retake(assignment_id=a.pk, worker=annotator)
    expire(a)
    with pytest.raises(NotFound):
        assignment_retake(assignment_id=a.pk, worker=make_user(qualified=True))
    with pytest.raises(NotFound):
        assignment_retake(assignment_id=a.pk + 999, worker=annotator)
    # Working on another HIT meanwhile: one live assignment at a time.
    b = assignment_claim(worker=annotator)
    with pytest.raises(Conflict, match="hand it in or return it"):
        assignment_retake(assignment_id=a.pk, worker=annotator)
    # Returned, skipped or submitted HITs are not "expired": refused, nothing changes.
    assignment_return(assignment_id=b.pk, worker=annotator)
    with pytest.raises(Conflict, match="returned"):
        assignment_retake(assignment_id=b.pk, worker=annotator)
    c = assignment_claim(worker=annotator)
    hit_skip(assignment_id=c.pk, worker=annotator)
    with pytest.raises(Conflict):
        assignment_retake(assignment_id=c.pk, worker=annotator)
    d = assignment_claim(worker=annotator)
    annotation_submit(assignment_id=d.pk, worker=annotator, word="dog", category="object")
    with pytest.raises(Conflict, match="submitted"):
        assignment_retake(assignment_id=d.pk, worker=annotator)
    assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.ABANDONED


def test_a_blocked_annotator_cannot_take_it_again(annotator, hits):
    a = assignment_claim(worker=annotator)
    expire(a)
    annotator_block(user=annotator, reason="test")
    with pytest.raises(NotAllowed):
        assignment_retake(assignment_id=a.pk, worker=annotator)


def test_the_expiry_page_offers_the_hit_again_and_the_post_takes_it(client, annotator, hits):
    client.force_login(annotator)
    client.post(reverse("crowd:next"))
    a = Assignment.objects.get(worker=annotator)
    expire(a)
    page = client.get(reverse("crowd:work", args=[a.pk])).content.decode()
    assert "ran out" in page and reverse("crowd:retake", args=[a.pk]) in page
    response = client.post(reverse("crowd:retake", args=[a.pk]))
    assert response["Location"] == reverse("crowd:work", args=[a.pk])
    assert 'id="answer-form"' in client.get(response["Location"]).content.decode()


def test_someone_else_gets_a_404_page_from_the_retake_address(client, annotator, hits):
    a = assignment_claim(worker=annotator)
    expire(a)
    client.force_login(make_user(qualified=True))
    assert client.post(reverse("crowd:retake", args=[a.pk])).status_code == 404
    assert Assignment.objects.get(pk=a.pk).status == Assignment.Status.ABANDONED
