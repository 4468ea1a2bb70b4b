"""Extending a live assignment: once, in its last 2 minutes, by half its duration (capped), own only."""
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import make_user
from units.crowd.errors import Conflict, NotFound
from units.crowd.models import Assignment
from units.crowd.services import (
    EXTEND_MAX_SECONDS, annotation_submit, assignment_claim, assignment_extend, assignment_retake,
    assignments_reclaim_expired,
)

pytestmark = pytest.mark.django_db


def near_the_end(assignment, seconds=90):
    deadline = timezone.now() + timedelta(seconds=seconds)
    Assignment.objects.filter(pk=assignment.pk).update(deadline=deadline)
    return deadline


def test_extend_once_by_half_the_duration(annotator, hits):  # the fixture's duration is 600 s
    a = assignment_claim(worker=annotator)
    deadline = near_the_end(a)
    extended = assignment_extend(assignment_id=a.pk, worker=annotator)
    assert extended.deadline == deadline + timedelta(seconds=300)
    assert Assignment.objects.get(pk=a.pk).deadline == deadline + timedelta(seconds=300)
    near_the_end(a, 60)  # even near the end again: once only
    with pytest.raises(Conflict, match="once already"):
        assignment_extend(assignment_id=a.pk, worker=annotator)
    annotation_submit(assignment_id=a.pk, worker=annotator, word="dog", category="object")


def test_the_extension_is_capped(annotator, hits):
    hits[0].batch.__class__.objects.filter(pk=hits[0].batch_id).update(assignment_duration_seconds=3 * 3600)
    hits[0].__class__.objects.filter(batch_id=hits[0].batch_id).update(assignment_duration_seconds=3 * 3600)
    a = assignment_claim(worker=annotator)
    deadline = near_the_end(a)
    assert assignment_extend(assignment_id=a.pk, worker=annotator).deadline == deadline + timedelta(
        seconds=EXTEND_MAX_SECONDS)


def test_refused_too_early_too_late_and_for_others(annotator, hits):
    a = assignment_claim(worker=annotator)
    with pytest.raises(Conflict, match="last 2 minutes"):
        assignment_extend(assignment_id=a.pk, worker=annotator)
    near_the_end(a)
    with pytest.raises(NotFound):
        assignment_extend(assignment_id=a.pk, worker=make_user(qualified=True))
    Assignment.objects.filter(pk=a.pk).update(deadline=timezone.now() - timedelta(seconds=1))
    with pytest.raises(Conflict, match="running"):
        assignment_extend(assignment_id=a.pk, worker=annotator)
    assignments_reclaim_expired()
    with pytest.raises(Conflict, match="running"):
        assignment_extend(assignment_id=a.pk, worker=annotator)
    # A retake starts a fresh window, which may be extended once again.
    again = assignment_retake(assignment_id=a.pk, worker=annotator)
    near_the_end(again)
    assignment_extend(assignment_id=a.pk, worker=annotator)


def test_the_page_offers_extend_and_the_post_moves_the_deadline(client, annotator, hits):
    client.force_login(annotator)
    client.post(reverse("crowd:next"))
    a = Assignment.objects.get(worker=annotator)
    page = client.get(reverse("crowd:work", args=[a.pk])).content.decode()
    assert 'id="extend-form"' in page and "Extend by 5 minutes" in page
    too_early = client.post(reverse("crowd:extend", args=[a.pk]))
    assert too_early["Location"] == reverse("crowd:work", args=[a.pk])
    assert Assignment.objects.get(pk=a.pk).deadline == a.deadline  # refused, nothing written
    deadline = near_the_end(a)
    client.post(reverse("crowd:extend", args=[a.pk]))
    assert Assignment.objects.get(pk=a.pk).deadline == deadline + timedelta(seconds=300)
    assert 'id="extend-form"' not in client.get(reverse("crowd:work", args=[a.pk])).content.decode()
    client.force_login(make_user(qualified=True))
    assert client.post(reverse("crowd:extend", args=[a.pk])).status_code == 404
