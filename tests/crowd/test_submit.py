"""Submitting an answer: validation, double submits, deadlines, ownership, sentinels and gold."""
from datetime import timedelta

import pytest

from units.crowd.errors import Conflict, InvalidAnswer, NotFound
from units.crowd.models import Annotation, AnnotatorProfile, Assignment, Hit
from units.crowd.selectors import hit_exemplars
from units.crowd.services import annotation_submit, assignment_claim
from units.dissection.models import Exemplar

pytestmark = pytest.mark.django_db


@pytest.fixture
def assignment(annotator, hits):
    return assignment_claim(worker=annotator)


def answer(assignment, worker, **extra):
    values = {"word": "seven", "category": "object", "non_fitting": [], "confidence": 4, "description": ""}
    values.update(extra)
    return annotation_submit(assignment_id=assignment.pk, worker=worker, **values)


def test_a_valid_answer_is_stored_with_the_server_measured_time_on_task(annotator, assignment):
    marked = [ex.pk for ex in hit_exemplars(assignment.hit)][:2]
    later = assignment.accepted_at + timedelta(seconds=42)
    annotation = answer(assignment, annotator, word="  dog   face ", non_fitting=marked, now=later)
    assignment.refresh_from_db()
    assert annotation.word == "dog face"
    assert sorted(annotation.non_fitting.values_list("pk", flat=True)) == sorted(marked)
    assert assignment.status == Assignment.Status.SUBMITTED
    assert assignment.work_seconds == 42.0
    assert assignment.auto_approve_at == later + timedelta(seconds=assignment.hit.auto_approval_delay_seconds)


@pytest.mark.parametrize("extra, field", [
    ({"word": ""}, "word"),
    ({"word": "x" * 61}, "word"),
    ({"word": "<script>"}, "word"),
    ({"word": "_under"}, "word"),
    ({"category": ""}, "category"),
    ({"category": "animal"}, "category"),
    ({"description": "d" * 1001}, "description"),
    ({"description": "bell\x07"}, "description"),
    ({"confidence": 6}, "confidence"),
    ({"confidence": 0}, "confidence"),
])
def test_invalid_answers_are_refused_with_the_field_named_and_nothing_written(annotator, assignment, extra, field):
    with pytest.raises(InvalidAnswer) as info:
        answer(assignment, annotator, **extra)
    assert field in info.value.errors
    assert not Annotation.objects.exists()
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.ACCEPTED


def test_no_clear_concept_needs_no_word(annotator, assignment):
    annotation = answer(assignment, annotator, word="", category="none")
    assert (annotation.word, annotation.category) == ("", "none")


def test_words_in_other_scripts_and_with_joiners_are_accepted(annotator, assignment):
    assert answer(assignment, annotator, word="chien d'arrêt / Hund-3").word == "chien d'arrêt / Hund-3"


def test_marking_an_image_of_another_hit_is_refused(annotator, assignment, hits):
    foreign = Exemplar.objects.exclude(unit=assignment.hit.unit).first()
    with pytest.raises(InvalidAnswer) as info:
        answer(assignment, annotator, non_fitting=[foreign.pk])
    assert str(foreign.pk) in info.value.errors["non_fitting"][0]
    assert not Annotation.objects.exists()


def test_an_image_of_the_unit_not_shown_in_the_hit_is_refused(annotator, hits):
    Hit.objects.update(exemplars_shown=3)
    a = assignment_claim(worker=annotator)
    hidden = Exemplar.objects.get(unit=a.hit.unit, rank=5)
    with pytest.raises(InvalidAnswer):
        answer(a, annotator, non_fitting=[hidden.pk])


def test_a_double_submit_of_the_same_answer_returns_the_same_result(annotator, assignment):
    first = answer(assignment, annotator, non_fitting=[hit_exemplars(assignment.hit)[0].pk])
    second = answer(assignment, annotator, non_fitting=[hit_exemplars(assignment.hit)[0].pk])
    assert first.pk == second.pk
    assert Annotation.objects.count() == 1


def test_a_second_submit_with_a_different_answer_is_refused(annotator, assignment):
    answer(assignment, annotator)
    with pytest.raises(Conflict, match="different answer"):
        answer(assignment, annotator, word="eight")
    assert Annotation.objects.get().word == "seven"


def test_a_submit_after_the_deadline_is_refused_and_nothing_is_written(annotator, assignment):
    with pytest.raises(Conflict, match="time"):
        answer(assignment, annotator, now=assignment.deadline + timedelta(seconds=1))
    assert not Annotation.objects.exists()


def test_a_submit_on_someone_elses_assignment_is_refused(other_annotator, assignment):
    with pytest.raises(NotFound, match="no assignment"):
        answer(assignment, other_annotator)
    assert not Annotation.objects.exists()


def test_a_returned_assignment_cannot_be_submitted(annotator, assignment):
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.RETURNED)
    with pytest.raises(Conflict, match="returned"):
        answer(assignment, annotator)


def _add_sentinels(hit, n):
    hit.batch.sentinels = n
    hit.batch.save(update_fields=["sentinels"])
    for r in range(n):
        Exemplar.objects.create(unit=hit.unit, kind="sentinel", rank=r, image_index=900 + r,
                                image_name=f"low{r}.png", score=0.0, picture=f"s{r}.png")


def test_sentinels_are_shown_among_the_exemplars_in_a_stable_order(annotator, assignment):
    _add_sentinels(assignment.hit, 2)
    shown = hit_exemplars(assignment.hit)
    assert len(shown) == 6 + 2
    assert sum(ex.kind == "sentinel" for ex in shown) == 2
    assert [ex.pk for ex in hit_exemplars(assignment.hit)] == [ex.pk for ex in shown]


def test_leaving_a_sentinel_marked_as_fitting_flags_the_annotator(annotator, assignment):
    _add_sentinels(assignment.hit, 2)
    sentinels = [ex.pk for ex in hit_exemplars(assignment.hit) if ex.kind == "sentinel"]
    annotation = answer(assignment, annotator, non_fitting=sentinels[:1])
    assert (annotation.sentinels_shown, annotation.sentinels_missed) == (2, 1)
    assert annotation.non_fitting.count() == 0  # sentinels are kept out of the precision data
    assert AnnotatorProfile.objects.get(user=annotator).flagged_at is not None


def test_marking_every_sentinel_keeps_the_annotator_unflagged(annotator, assignment):
    _add_sentinels(assignment.hit, 2)
    sentinels = [ex.pk for ex in hit_exemplars(assignment.hit) if ex.kind == "sentinel"]
    annotation = answer(assignment, annotator, non_fitting=sentinels)
    assert annotation.sentinels_missed == 0
    assert AnnotatorProfile.objects.get(user=annotator).flagged_at is None


def test_a_gold_hit_records_whether_the_answer_matched(annotator, other_annotator, hits):
    unit = hits[0].unit
    unit.is_gold, unit.gold_word, unit.gold_category = True, "7|seven", "object"
    unit.save()
    right = answer(assignment_claim(worker=annotator), annotator, word="Seven")
    wrong = answer(assignment_claim(worker=other_annotator), other_annotator, word="one")
    assert (right.gold_correct, wrong.gold_correct) == (True, False)
    ordinary = answer(assignment_claim(worker=annotator), annotator)
    assert ordinary.gold_correct is None
