"""The aggregation benchmark: its statistics against hand-worked values, its simulated workers against
their stated skills, and a --quick run printing every table."""
import random

import pytest

from benchmarks import aggregation_bench as bench

pytestmark = pytest.mark.filterwarnings("ignore:::crowdkit")


def test_the_wilson_interval_matches_the_textbook_values():
    # 8 of 10: centre (0.8 + 1.92/10) / 1.384, half-width 1.96 * sqrt(0.016 + 0.00096) / 1.384.
    lo, hi = bench.wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    assert bench.wilson(0, 0) == (0.0, 0.0)


def test_the_reliability_table_bins_predictions_and_counts_what_was_right():
    rows = bench.reliability_table([(0.55, True), (0.58, False), (0.99, True), (1.0, True)], (0.0, 0.5, 0.6, 1.0))
    assert rows == [("0.50-0.60", 2, pytest.approx(0.565), 0.5), ("0.60-1.00", 2, pytest.approx(0.995), 1.0)]


@pytest.mark.parametrize("kind", ["one-coin", "confuser", "uniform", "constant", "adversary"])
def test_each_simulated_worker_answers_the_category_right_as_often_as_its_true_skill_says(kind):
    rng = random.Random(5)
    worker = bench.Worker("w", kind, 0.7 if kind in ("one-coin", "confuser") else 0.1, ("dog", "object"))
    n = 20000
    right = sum(worker.answer(truth, rng)[1] == truth[1] for truth in (bench.draw_truth(rng) for _ in range(n)))
    assert right / n == pytest.approx(worker.p_category(), abs=0.015)


def test_a_quick_run_prints_every_table(capsys):
    bench.main(bench.parse_args(["--quick"]))
    out = capsys.readouterr().out
    for method in ("MV", "Wawa", "ZeroBasedSkill", "OneCoinDS", "DS", "GLAD", "ours"):
        assert f" {method} |" in out
    assert "| 1 | 30% |" in out and "| 5 | 30% |" in out
    assert "## worker-skill recovery" in out
    assert "## calibration on the load benchmark's crowd" in out and "## calibration on this benchmark's crowd" in out
    assert "| 60% | 30% |" in out
    assert "aggregation of a 512-unit layer with 2560 answers: median" in out
