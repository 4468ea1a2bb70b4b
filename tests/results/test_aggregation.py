"""Aggregation against hand-worked cases, against Crowd-Kit called directly, and alpha by hand."""
import random

import pandas as pd
import pytest
from crowdkit.aggregation import MajorityVote

from units.results.aggregation import Answer, aggregate, krippendorff_alpha, unit_precision, winning_word

# Crowd-Kit 1.4 uses pandas keywords that pandas 3 deprecates (see units.results.aggregation).
pytestmark = pytest.mark.filterwarnings("ignore:::crowdkit")


def test_a_hand_worked_layer_gets_the_words_categories_agreement_and_precision_we_computed():
    answers = [
        Answer("u1", "a", "dog", "object", shown=10, non_fitting=1),
        Answer("u1", "b", "dog", "object", shown=10, non_fitting=3),
        Answer("u1", "c", "cat", "object", shown=10, non_fitting=0),
        Answer("u2", "a", "sky", "scene", shown=10, non_fitting=0),
        Answer("u2", "b", "", "none", shown=10, non_fitting=10),
        Answer("u2", "c", "sky", "scene", shown=10, non_fitting=5),
    ]
    result = aggregate(answers)
    u1, u2 = result.units["u1"], result.units["u2"]
    assert (u1.crowd_word, u1.category_mv, u1.n_annotations) == ("dog", "object", 3)
    assert u1.agreement == pytest.approx(2 / 3)
    assert u1.category_agreement == pytest.approx(1.0)
    assert u1.precision == pytest.approx((0.9 + 0.7 + 1.0) / 3)
    assert (u2.crowd_word, u2.category_mv) == ("sky", "scene")
    assert u2.agreement == pytest.approx(2 / 3)
    assert u2.category_agreement == pytest.approx(2 / 3)
    assert u2.precision == pytest.approx((1.0 + 0.0 + 0.5) / 3)
    # Categories: u1 three objects, u2 scene/none/scene -> alpha = 1 - (2/6) / (22/30) = 12/22 by hand.
    assert result.alpha_category == pytest.approx(12 / 22)


def test_word_ties_prefer_a_named_word_then_the_alphabetically_first():
    assert winning_word([Answer(1, "a", "tree", "texture"), Answer(1, "b", "bush", "texture")]) == ("bush", 0.5)
    assert winning_word([Answer(1, "a", "", "none"), Answer(1, "b", "grass", "texture")]) == ("grass", 0.5)
    assert winning_word([Answer(1, "a", "", "none"), Answer(1, "b", "", "none")]) == ("", 1.0)


def test_a_word_given_with_no_clear_concept_counts_as_none():
    assert winning_word([Answer(1, "a", "blob", "none"), Answer(1, "b", "", "none")]) == ("", 1.0)


def test_precision_ignores_answers_that_were_shown_no_images():
    assert unit_precision([Answer(1, "a", "x", "object", 0, 0), Answer(1, "b", "x", "object", 4, 1)]) == 0.75
    assert unit_precision([Answer(1, "a", "x", "object", 0, 0)]) is None


def test_krippendorff_alpha_matches_a_worked_example_with_varying_raters():
    # Pairable values: u1 {object, object, scene}, u2 {scene, scene}, u3 {part, object, object}; u4 is rated once.
    # Coincidences: o_oo = 1 + 1, o_os = o_so = 1, o_ss = 2, o_op = o_po = 1; n_o = 4, n_s = 3, n_p = 1, n = 8.
    # D_o = 4 / 8; D_e = (64 - 16 - 9 - 1) / (8 * 7) = 38 / 56; alpha = 1 - (1/2) / (38/56) = 10 / 38.
    records = [
        ("u1", "a", "object"), ("u1", "b", "object"), ("u1", "c", "scene"),
        ("u2", "a", "scene"), ("u2", "b", "scene"),
        ("u3", "a", "part"), ("u3", "b", "object"), ("u3", "c", "object"),
        ("u4", "a", "color"),
    ]
    assert krippendorff_alpha(records) == pytest.approx(10 / 38)


def test_alpha_is_one_for_perfect_agreement_and_undefined_without_pairs():
    assert krippendorff_alpha([("u1", "a", "x"), ("u1", "b", "x"), ("u2", "a", "y"), ("u2", "b", "y")]) == 1.0
    assert krippendorff_alpha([("u1", "a", "x"), ("u2", "a", "y")]) is None
    assert krippendorff_alpha([]) is None


def _noisy_answers(seed: int = 7, n_tasks: int = 40) -> list[Answer]:
    rng = random.Random(seed)
    cats = ["scene", "object", "part", "texture", "color"]
    accuracy = {"good1": 0.95, "good2": 0.9, "ok": 0.7, "spam1": 0.2, "spam2": 0.25}
    answers = []
    for t in range(n_tasks):
        truth = cats[t % len(cats)]
        for worker, acc in accuracy.items():
            if rng.random() < 0.15:
                continue  # not every worker does every task
            cat = truth if rng.random() < acc else rng.choice(cats)
            answers.append(Answer(f"t{t}", worker, cat, cat))
    return answers


def test_the_vote_beside_the_published_category_equals_crowdkits_majority_vote_called_directly():
    answers = _noisy_answers()
    frame = pd.DataFrame([{"task": a.task, "worker": a.worker, "label": a.category} for a in answers])
    mv = MajorityVote().fit_predict(frame)
    result = aggregate(answers)
    assert {t: r.category_mv for t, r in result.units.items()} == mv.to_dict()


def test_the_published_skill_ranks_careful_workers_above_spammers():
    skills = aggregate(_noisy_answers()).skills
    assert min(skills["good1"], skills["good2"]) > skills["ok"] > max(skills["spam1"], skills["spam2"])
    assert all(0.0 <= s <= 1.0 for s in skills.values())


def test_careful_workers_outvote_spammers_where_the_plain_vote_cannot():
    answers = _noisy_answers(n_tasks=60)
    # Unit "x": both spammers agree on texture against one careful worker: the vote follows the spammers.
    answers += [Answer("x", "spam1", "texture", "texture"), Answer("x", "spam2", "texture", "texture"),
                Answer("x", "good1", "object", "object")]
    unit = aggregate(answers).units["x"]
    assert unit.category_mv == "texture"
    assert (unit.category, unit.crowd_word) == ("object", "object")
    assert 0.5 < unit.category_probability <= 1.0 and 0.5 < unit.word_probability <= 1.0


def test_one_category_everywhere_is_published_with_the_answer_count():
    result = aggregate([Answer(1, "a", "dog", "object"), Answer(1, "b", "cat", "object")])
    assert result.units[1].category == "object"
    assert result.units[1].n_annotations == 2
    assert result.units[1].crowd_word in {"dog", "cat"}
