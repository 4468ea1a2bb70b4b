"""The qualification test over gold units, its cool-down, and matching words against gold."""
from datetime import timedelta

import pytest
from django.utils import timezone

from tests.factories import lab_project, make_user
from units.crowd.errors import Conflict, CrowdError, NotAllowed
from units.crowd.models import QualificationSettings
from units.crowd.qualification import qualification_start, qualification_state, qualification_submit
from units.crowd.services import assignment_claim
from units.crowd.validation import matches_gold, normalise_word
from units.dissection.models import Unit

pytestmark = pytest.mark.django_db


@pytest.fixture
def gold(job):
    """Four gold units: digits 0..3 as objects."""
    units = list(Unit.objects.filter(layer__job=job).order_by("index"))
    for unit in units:
        unit.is_gold, unit.gold_word, unit.gold_category = True, str(unit.index), "object"
        unit.save()
    QualificationSettings.objects.update_or_create(project=job.project, defaults={
        "size": 4, "pass_fraction": 0.75, "cooldown_minutes": 30})
    return units


def answers_for(attempt, right: int):
    """Right answers for the first `right` units of the attempt, wrong ones after."""
    units = Unit.objects.in_bulk(attempt.unit_ids)
    return {uid: ((units[uid].gold_word if i < right else "wrong"), "object")
            for i, uid in enumerate(attempt.unit_ids)}


def test_three_of_four_right_passes_at_a_three_quarter_threshold(gold):
    user = make_user()
    attempt = qualification_start(user=user, project=lab_project())
    assert sorted(attempt.unit_ids) == sorted(u.pk for u in gold)
    attempt = qualification_submit(attempt=attempt, answers=answers_for(attempt, 3))
    assert (attempt.correct, attempt.passed) == (3, True)
    assert qualification_state(user, lab_project()).qualified


def test_two_of_four_fails_and_the_retake_waits_for_the_cool_down(gold, hits):
    user = make_user()
    attempt = qualification_start(user=user, project=lab_project())
    attempt = qualification_submit(attempt=attempt, answers=answers_for(attempt, 2))
    assert (attempt.correct, attempt.passed) == (2, False)
    with pytest.raises(NotAllowed):
        assignment_claim(worker=user)
    with pytest.raises(Conflict, match="retake"):
        qualification_start(user=user, project=lab_project())
    later = timezone.now() + timedelta(minutes=31)
    assert qualification_state(user, lab_project(), now=later).can_take
    assert qualification_start(user=user, project=lab_project(), now=later).pk != attempt.pk


def test_a_test_cannot_be_handed_in_twice(gold):
    user = make_user()
    attempt = qualification_start(user=user, project=lab_project())
    qualification_submit(attempt=attempt, answers=answers_for(attempt, 0))
    with pytest.raises(Conflict):
        qualification_submit(attempt=attempt, answers=answers_for(attempt, 4))


def test_without_gold_units_the_test_says_it_cannot_run(job):
    user = make_user()
    assert qualification_state(user, lab_project()).no_gold_units
    with pytest.raises(CrowdError, match="no gold units"):
        qualification_start(user=user, project=lab_project())


@pytest.mark.parametrize("word, gold_word, expected", [
    ("Seven", "7", True),
    ("the digit 7", "7|seven", True),
    ("dogs", "dog", True),
    ("  Dog   Face ", "dog face", True),
    ("cat", "dog, puppy", False),
    ("puppy", "dog, puppy", True),
    ("glass", "glass", True),  # a double s is not a plural
    ("8", "7", False),
])
def test_words_match_gold_after_normalisation(word, gold_word, expected):
    assert matches_gold(word=word, category="object", gold_word=gold_word, gold_category="object") is expected


def test_the_category_must_match_and_material_counts_as_texture():
    assert not matches_gold(word="7", category="part", gold_word="7", gold_category="object")
    assert matches_gold(word="wood", category="texture", gold_word="wood", gold_category="material")
    assert matches_gold(word="", category="none", gold_word="", gold_category="none")


def test_normalisation_drops_fillers_and_spells_digits():
    assert normalise_word("These are images of Threes") == "3"
    assert normalise_word("a seven") == "7"


def test_units_seen_in_the_qualification_are_not_offered_as_hits_to_that_annotator(gold, hits):
    QualificationSettings.objects.filter(project=lab_project()).update(size=2)
    user = make_user()
    attempt = qualification_start(user=user, project=lab_project())
    qualification_submit(attempt=attempt, answers=answers_for(attempt, 2))
    offered = set()
    while (a := assignment_claim(worker=user)) is not None:
        offered.add(a.hit.unit_id)
        a.status = "submitted"
        a.save(update_fields=["status"])
    assert offered == {h.unit_id for h in hits} - set(attempt.unit_ids)
    assert len(offered) == 2


def test_a_failed_attempt_shows_the_pass_mark_each_units_result_and_the_retake_in_relative_time(gold, hits, client):
    from django.urls import reverse

    user = make_user()
    client.force_login(user)
    client.get(reverse("crowd:qualification_test", args=[lab_project().pk]))  # starts the attempt, as the page does
    attempt = qualification_start(user=user, project=lab_project())
    posted = {}
    for i, uid in enumerate(attempt.unit_ids):  # units 1 and 3 right, 2 and 4 wrong
        unit = Unit.objects.get(pk=uid)
        posted[f"word_{uid}"] = unit.gold_word if i % 2 == 0 else "giraffe"
        posted[f"category_{uid}"] = "object"
    response = client.post(reverse("crowd:qualification_test", args=[lab_project().pk]), posted, follow=True)
    page = response.content.decode()
    assert "2 of 4 matched; passing needs 3" in page  # 0.75 x 4
    assert "Unit 1: matched" in page and "Unit 2: the word missed (the category was right)" in page
    assert "Unit 3: matched" in page and "Unit 4: the word missed (the category was right)" in page
    assert "you answered <q>giraffe</q>, object" in page
    # a first failure: a retake soon (FIRST_RETAKE_MINUTES), the wait shown
    assert "You can retake the test in 1\xa0minute" in page or "You can retake the test in 2\xa0minutes" in page
    # The known answers are not given away.
    second = Unit.objects.get(pk=attempt.unit_ids[1])
    assert f"<q>{second.gold_word}</q>" not in page


@pytest.mark.parametrize("typed", ["café", "CAFÉ", "Cafe\u0301", "  Café. "])
def test_gold_words_match_in_any_case_and_unicode_composition(typed):
    assert matches_gold(word=typed, category="object", gold_word="café|coffee", gold_category="object")
    assert not matches_gold(word="cafe", category="object", gold_word="café", gold_category="object")


def test_feedback_says_whether_the_word_or_the_category_or_both_missed(gold, hits, client):
    from django.urls import reverse

    user = make_user()
    client.force_login(user)
    client.get(reverse("crowd:qualification_test", args=[lab_project().pk]))
    attempt = qualification_start(user=user, project=lab_project())
    units = Unit.objects.in_bulk(attempt.unit_ids)
    given = [(lambda u: u.gold_word, "object"), (lambda u: u.gold_word, "texture"),
             (lambda u: "giraffe", "object"), (lambda u: "giraffe", "scene")]
    posted = {}
    for (word, category), uid in zip(given, attempt.unit_ids):
        posted[f"word_{uid}"], posted[f"category_{uid}"] = word(units[uid]), category
    url = reverse("crowd:qualification_test", args=[lab_project().pk])
    page = client.post(url, posted, follow=True).content.decode()
    assert "Unit 1: matched" in page
    assert "Unit 2: the category missed (the word was right)" in page
    assert "Unit 3: the word missed (the category was right)" in page
    assert "Unit 4: the word and the category missed" in page
    assert "not matched" not in page


def test_the_first_retake_comes_soon_and_each_further_failure_waits_longer_up_to_the_setting(gold):
    user = make_user()
    now = timezone.now()
    waits = []
    for _ in range(4):
        attempt = qualification_start(user=user, project=lab_project(), now=now)
        qualification_submit(attempt=attempt, answers=answers_for(attempt, right=0), now=now)
        state = qualification_state(user, lab_project(), now=now)
        waits.append(round((state.retake_at - now).total_seconds() / 60))
        now = state.retake_at + timedelta(seconds=1)
    assert waits == [2, 8, 30, 30]  # the fixture's cap: 30 minutes


def test_a_retake_shows_gold_units_not_seen_before(gold):
    QualificationSettings.objects.filter(project=lab_project()).update(size=2)
    user = make_user()
    first = qualification_start(user=user, project=lab_project())
    qualification_submit(attempt=first, answers=answers_for(first, right=0))
    later = qualification_state(user, lab_project()).retake_at + timedelta(seconds=1)
    second = qualification_start(user=user, project=lab_project(), now=later)
    assert not set(first.unit_ids) & set(second.unit_ids)
