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
