"""The simulated crowd of the load benchmark scores aggregation methods against truth."""
import pytest

from benchmarks.loadtest.crowd import simulate

pytestmark = pytest.mark.filterwarnings("ignore:::crowdkit")


def test_a_perfect_crowd_is_scored_perfect_by_every_method():
    scores = simulate(n_units=60, redundancy=3, accuracy=1.0, n_annotators=12, spammer_share=0.0)
    assert scores["units"] == 60
    assert scores["category_mv"] == scores["category_ds"] == scores["category_ds1"] == scores["word"] == 1.0
    assert scores["category"] == 1.0


def test_with_few_answers_per_annotator_one_coin_beats_the_vote_and_the_full_model_does_not():
    # ~40 answers per annotator: the full confusion matrices (30 numbers each) overfit, one skill does not.
    scores = simulate(n_units=512, redundancy=5, accuracy=0.6, n_annotators=64, spammer_share=0.1)
    assert scores["category_ds1"] > scores["category_mv"] > scores["category_ds"]


def test_the_quality_rule_keeps_a_crowd_with_spammers_within_two_points_of_a_crowd_without():
    from benchmarks.loadtest.crowd import spammer_sweep

    rows = {(r["spammers"], r["rule"]): r for r in spammer_sweep(n_units=400, redundancy=3, accuracy=0.8,
                                                                  n_annotators=48, seed=0)}
    clean = rows[(0.0, False)]["category_mv"]
    assert rows[(0.3, False)]["category_mv"] < clean - 0.05  # the spammers do hurt without the rule
    for share in (0.1, 0.3):
        with_rule = rows[(share, True)]
        assert with_rule["category_mv"] >= clean - 0.02, (share, with_rule, clean)
        assert with_rule["blocked_spammers"] == round(48 * share)  # every spammer caught
        assert with_rule["spam_answers"] == 0.0  # and their answers rejected


def test_without_spammers_the_sweep_collects_every_answer_asked_for():
    from benchmarks.loadtest.crowd import spammer_sweep

    for row in spammer_sweep(n_units=60, redundancy=3, accuracy=1.0, n_annotators=12, shares=(0.0,)):
        assert row["units"] == 60 and row["category_mv"] == 1.0 and row["blocked_spammers"] == 0
