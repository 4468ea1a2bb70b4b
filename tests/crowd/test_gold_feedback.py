"""The annotator's home shows gold accuracy only delayed and in steps, never pointing at a HIT."""
import random
import re

import pytest
from django.urls import reverse

from tests.factories import make_hits, make_job
from units.crowd.models import CrowdSettings
from units.crowd.review import unit_mark_gold
from units.crowd.selectors import (
    GOLD_FEEDBACK_DELAY, GOLD_FEEDBACK_MIN, GOLD_FEEDBACK_STEP, annotator_stats, gold_feedback,
)
from units.crowd.services import annotation_submit, assignment_claim

pytestmark = pytest.mark.django_db


def random_outcomes(rng, n):
    return [rng.choice([None, None, True, False]) for _ in range(n)]


def test_the_latest_submissions_never_move_the_figure():
    rng = random.Random(7)
    for _ in range(500):
        history = random_outcomes(rng, rng.randint(0, 80))
        recent, other_recent = random_outcomes(rng, GOLD_FEEDBACK_DELAY), random_outcomes(rng, GOLD_FEEDBACK_DELAY)
        assert gold_feedback(history + recent) == gold_feedback(history + other_recent)


def test_the_figure_can_change_only_every_step_whatever_was_gold():
    rng = random.Random(3)
    for _ in range(300):
        outcomes = random_outcomes(rng, 80)
        for k in range(1, len(outcomes) + 1):
            if (k - GOLD_FEEDBACK_DELAY) % GOLD_FEEDBACK_STEP:
                assert gold_feedback(outcomes[:k]) == gold_feedback(outcomes[:k - 1]), k


def test_the_figure_is_the_plain_accuracy_of_the_counted_gold_answers():
    rng = random.Random(11)
    for _ in range(300):
        outcomes = random_outcomes(rng, rng.randint(0, 80))
        # Independent count: the submissions at least DELAY old, rounded down to whole steps.
        old_enough = [ok for i, ok in enumerate(outcomes) if len(outcomes) - i > GOLD_FEEDBACK_DELAY]
        counted = old_enough[: len(old_enough) - len(old_enough) % GOLD_FEEDBACK_STEP]
        golds = [ok for ok in counted if ok is not None]
        expected = (len(golds), golds.count(True)) if len(golds) >= GOLD_FEEDBACK_MIN else (0, 0)
        assert gold_feedback(outcomes) == expected


def gold_text(client) -> str:
    page = client.get(reverse("crowd:home")).content.decode()
    return re.search(r'<dd id="gold-accuracy"[^>]*>(.*?)</dd>', page, re.S).group(1)


def test_the_home_page_changes_only_at_steps_and_never_right_after_a_gold_hit_by_itself(client, annotator):
    n_hits = GOLD_FEEDBACK_DELAY + 2 * GOLD_FEEDBACK_STEP
    job = make_job(layers={"conv3": n_hits}, exemplars_per_unit=2)
    hits = make_hits(job, assignments=1)
    for h in hits[::2]:  # half of them gold
        unit_mark_gold(unit_id=h.unit_id, word="seven", category="object")
    crowd = CrowdSettings.load()
    crowd.gold_rate = 0.5  # gold HITs spread through the run rather than bunched at its end
    crowd.save(update_fields=["gold_rate"])
    client.force_login(annotator)
    before = gold_text(client)
    assert before == "–"
    changed_at = []
    for k in range(1, n_hits + 1):
        a = assignment_claim(worker=annotator)
        annotation_submit(assignment_id=a.pk, worker=annotator, word="seven" if k % 3 else "eight", category="object")
        after = gold_text(client)
        if after != before:
            changed_at.append(k)
        before = after
    assert all((k - GOLD_FEEDBACK_DELAY) % GOLD_FEEDBACK_STEP == 0 for k in changed_at), changed_at
    stats = annotator_stats(annotator)
    assert stats.gold_answered >= GOLD_FEEDBACK_MIN and f"({stats.gold_correct}/{stats.gold_answered})" in before
