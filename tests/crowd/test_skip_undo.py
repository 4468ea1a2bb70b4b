"""Undo for skip: own skip only, for a short while, the same HIT again when its slot is still free."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_user
from units.crowd.errors import Conflict, NotFound
from units.crowd.models import Assignment, Skip
from units.crowd.services import SKIP_UNDO_SECONDS, annotation_submit, assignment_claim, hit_skip, hit_skip_undo

pytestmark = pytest.mark.django_db


def skip_one(worker):
    a = assignment_claim(worker=worker)
    skip = hit_skip(assignment_id=a.pk, worker=worker)
    nxt = assignment_claim(worker=worker)  # what the page after the skip opens
    return a, skip, nxt


def test_undo_gives_the_same_hit_back_and_releases_the_auto_claimed_one(annotator, hits):
    a, skip, nxt = skip_one(annotator)
    revived = hit_skip_undo(skip_id=skip.pk, worker=annotator)
    assert revived.pk == a.pk and revived.status == Assignment.Status.ACCEPTED
    assert revived.deadline > timezone.now()
    assert not Skip.objects.filter(pk=skip.pk).exists()
    # One live assignment at a time, one row per (HIT, worker); the auto-claimed HIT can come again later.
    live = Assignment.objects.filter(worker=annotator, status=Assignment.Status.ACCEPTED)
    assert list(live) == [revived]
    assert not Assignment.objects.filter(pk=nxt.pk).exists()
    assert assignment_claim(worker=annotator) == revived
    annotation_submit(assignment_id=revived.pk, worker=annotator, word="dog", category="object")
    seen = {assignment_claim(worker=annotator).hit_id}
    assert a.hit_id not in seen


def test_undo_when_the_slot_was_taken_meanwhile_drops_the_skip_but_claims_nothing(annotator, hits):
    a, skip, _ = skip_one(annotator)
    others = [make_user(qualified=True) for _ in range(2)]
    for other in others:  # max_assignments is 2: both slots of the skipped HIT go to others
        while True:
            b = assignment_claim(worker=other)
            if b.hit_id == a.hit_id:
                break
            annotation_submit(assignment_id=b.pk, worker=other, word="x", category="object")
    assert hit_skip_undo(skip_id=skip.pk, worker=annotator) is None
    assert not Skip.objects.filter(pk=skip.pk).exists()
    a.refresh_from_db()
    assert a.status == Assignment.Status.RETURNED
    assert Assignment.objects.filter(hit=a.hit, status__in=Assignment.SLOT_STATUSES).count() == 2


def test_only_the_own_recent_skip_can_be_undone(annotator, hits):
    a, skip, _ = skip_one(annotator)
    intruder = make_user(qualified=True)
    with pytest.raises(NotFound):
        hit_skip_undo(skip_id=skip.pk, worker=intruder)
    with pytest.raises(NotFound):
        hit_skip_undo(skip_id=skip.pk + 999, worker=annotator)
    with pytest.raises(Conflict):
        hit_skip_undo(skip_id=skip.pk, worker=annotator, now=skip.created_at + timedelta(seconds=SKIP_UNDO_SECONDS + 1))
    assert Skip.objects.filter(pk=skip.pk).exists()  # refused: nothing written


def test_a_submit_after_the_skip_ends_the_undo(annotator, hits):
    _, skip, nxt = skip_one(annotator)
    annotation_submit(assignment_id=nxt.pk, worker=annotator, word="dog", category="object")
    with pytest.raises(Conflict):
        hit_skip_undo(skip_id=skip.pk, worker=annotator)
    assert Skip.objects.filter(pk=skip.pk).exists()


def test_the_page_after_a_skip_offers_undo_and_the_post_brings_the_hit_back(client, annotator, hits):
    client.force_login(annotator)
    client.post(reverse("crowd:next"))
    a = Assignment.objects.get(worker=annotator)
    following = client.post(reverse("crowd:skip", args=[a.pk]))
    page = client.get(following["Location"]).content.decode()
    skip = Skip.objects.get(worker=annotator)
    assert 'id="undo-skip"' in page and reverse("crowd:undo_skip", args=[skip.pk]) in page
    response = client.post(reverse("crowd:undo_skip", args=[skip.pk]))
    assert response["Location"] == reverse("crowd:work", args=[a.pk])
    assert 'id="undo-skip"' not in client.get(response["Location"]).content.decode()


def test_another_annotator_cannot_undo_through_the_page(client, annotator, hits):
    _, skip, _ = skip_one(annotator)
    client.force_login(make_user(qualified=True))
    response = client.post(reverse("crowd:undo_skip", args=[skip.pk]))
    assert response.status_code == 404 and Skip.objects.filter(pk=skip.pk).exists()  # as if it did not exist
    assert client.get(reverse("crowd:undo_skip", args=[skip.pk])).status_code == 405
