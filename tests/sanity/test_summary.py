"""The report's statistics and the seed's claims, from hand-made runs with known figures."""
import math

import pytest

from tasks.engine.sanity.render import to_html, to_markdown
from tasks.engine.sanity.report import summarise
from tasks.engine.sanity.summary import best_units, run_figures, stat
from tests.sanity.runs import make_run, one_hot_aps

CONFIG = {"variants": ["baseline", "dropout", "wide", "wide_dropout"], "ap_cutoff": 0.8, "source": "digits",
          "network": "mixturenet",
          "n_train": 100, "n_val": 100, "epochs": 1, "canvas": 32, "digit_size": 14, "dropout": 0.5, "wide": 3.0,
          "seeds": 2, "quick": False}


def test_stat_gives_mean_and_sample_std_over_seeds():
    s = stat([0.9, 0.8, None])
    assert s["mean"] == pytest.approx(0.85)
    assert s["std"] == pytest.approx(math.sqrt(((0.05) ** 2 * 2) / 1))
    assert s["n"] == 2 and stat([0.5])["std"] == 0.0 and stat([])["mean"] is None


def test_run_figures_count_detectors_at_the_cutoff_and_read_reliance_from_conv3():
    aps = one_hot_aps([0, 1, 2], strong=0.9) + [[0.8 if k == 3 else 0.1 for k in range(10)], [0.79] + [0.1] * 9]
    run = make_run("baseline", 0, accuracy=0.9, conv3_aps=aps, ablations=[0.05, 0.2, 0.01, 0.0, 0.03])
    f = run_figures(run, ap_cutoff=0.8)
    assert f["detector_units_focus"] == 4  # AP 0.8 counts (at the cut-off), 0.79 does not
    assert f["digits_with_detector"] == 4
    assert f["max_ablation_focus"] == pytest.approx(0.2)
    # best conv3 AP per digit: 0.9, 0.9, 0.9, 0.8, then 0.2 (one-hot units' weak value) for 4..9
    assert f["mean_best_ap_focus"] == pytest.approx((0.9 * 3 + 0.8 + 0.2 * 6) / 10)


def test_best_units_pick_the_largest_ap_per_digit_across_layers():
    run = make_run("baseline", 0, accuracy=0.9, conv3_aps=one_hot_aps([0, 7], strong=0.95))
    rows = {r["digit"]: r for r in best_units(run)}
    assert rows[0]["layer"] == "conv3" and rows[0]["unit"] == 0 and rows[0]["ap"] == 0.95
    assert rows[7]["unit"] == 1
    assert rows[0]["precision_at_k"]["100"] == pytest.approx(1.0)  # min(1, 0.95 + 0.05)


def _report(wide_strong: float, wide_ablation: float, base_strong: float = 0.85, drop_strong: float = 0.85):
    runs = []
    for seed in (0, 1):
        jitter = 0.001 * seed
        runs.append(make_run("baseline", seed, accuracy=0.9 + jitter,
                             conv3_aps=one_hot_aps(range(5), base_strong + jitter),
                             ablations=[0.10 + jitter] * 5))
        runs.append(make_run("dropout", seed, accuracy=0.8 + jitter,
                             conv3_aps=one_hot_aps(range(5), drop_strong + jitter),
                             ablations=[0.10 + jitter] * 5))
        runs.append(make_run("wide", seed, accuracy=0.93 + jitter,
                             conv3_aps=one_hot_aps(range(10), wide_strong + jitter),
                             ablations=[wide_ablation + jitter] * 10))
        runs.append(make_run("wide_dropout", seed, accuracy=0.92 + jitter,
                             conv3_aps=one_hot_aps(range(10), wide_strong + jitter),
                             ablations=[wide_ablation + jitter] * 10))
    return summarise(config=CONFIG, runs=runs, data={})


def _claim(report, start, network="MixtureNet"):
    return next(c for c in report["claims"] if c["claim"].startswith(start) and c["network"].startswith(network))


def _section(report, design="mixturenet"):
    return report["networks"][design]


def test_wider_with_more_detectors_and_less_reliance_agrees_with_the_seed():
    report = _report(wide_strong=0.95, wide_ablation=0.02)
    assert _claim(report, "Tripling conv3's width gives better")["verdict"] == "reproduced"
    assert _claim(report, "Tripling conv3's width gives less")["verdict"] == "reproduced"
    assert _section(report)["variants"]["wide"]["digits_with_detector"]["mean"] == 10
    assert _section(report)["variants"]["baseline"]["digits_with_detector"]["mean"] == 5


def test_wider_with_more_reliance_on_one_unit_disagrees_and_says_so():
    report = _report(wide_strong=0.95, wide_ablation=0.30)
    assert _claim(report, "Tripling conv3's width gives less")["verdict"] == "not reproduced"


def test_accuracy_claim_follows_the_runs_accuracy():
    report = _report(wide_strong=0.95, wide_ablation=0.02)
    acc = _claim(report, "The network")
    assert acc["verdict"] == "reproduced"  # baseline 90.05% is within 3 points of 91.7%
    assert "90.1%" in acc["ours"]
    assert _section(report)["variants"]["baseline"]["accuracy"]["mean"] == pytest.approx(0.9005)


def test_dropout_claim_reports_the_direction_of_each_change():
    report = _report(wide_strong=0.95, wide_ablation=0.02, drop_strong=0.99)
    claim = _claim(report, "Dropout on conv3 changes how units act as digit detectors (dropout vs baseline)")
    assert claim["verdict"] == "reproduced"
    assert "mean best AP per digit higher" in claim["note"] and "accuracy lower" in claim["note"]


def test_markdown_and_html_show_the_tables_and_escape_text():
    report = _report(wide_strong=0.95, wide_ablation=0.02)
    report["source_text"] = "<script>x</script>"
    md, page = to_markdown(report), to_html(report)
    assert "| seed paper: conv3 | 0 | 1.00 | 1.00 | 1.00 | 0.99 | 0.99 | 0.98 | 0.90 |" in md
    assert "conv3 x3 wider + dropout" in md
    assert "<script>x</script>" not in page and "&lt;script&gt;" in page


def test_with_one_seed_no_claim_gets_a_verdict_it_cannot_support():
    runs = [make_run("baseline", 0, accuracy=0.9, conv3_aps=one_hot_aps(range(5), 0.85), ablations=[0.1] * 5),
            make_run("wide", 0, accuracy=0.93, conv3_aps=one_hot_aps(range(10), 0.95), ablations=[0.02] * 10),
            make_run("dropout", 0, accuracy=0.8, conv3_aps=one_hot_aps(range(5), 0.99), ablations=[0.1] * 5)]
    report = summarise(config=dict(CONFIG, variants=["baseline", "dropout", "wide"], seeds=1), runs=runs, data={})
    for start in ("Tripling conv3's width gives better", "Tripling conv3's width gives less", "Dropout on conv3"):
        claim = _claim(report, start)
        assert claim["verdict"] == "inconclusive" and "one seed" in claim["note"]
    assert "± " not in _claim(report, "The network")["ours"]
    # The console headline too: one seed has no spread, so none is printed (not "± 0.0").
    baseline_line = next(line for line in report["headline"] if line.startswith("baseline:"))
    assert "accuracy 90.0% (seed paper" in baseline_line and "±" not in baseline_line


def test_with_several_seeds_the_headline_shows_the_spread():
    report = _report(wide_strong=0.95, wide_ablation=0.02)
    baseline_line = next(line for line in report["headline"] if line.startswith("baseline:"))
    assert "accuracy 90.1% ± 0.1 (seed paper" in baseline_line


def test_usefulness_says_whether_redundant_digits_get_detectors_and_how_strong():
    runs = []
    for seed in (0, 1):
        runs.append(make_run("baseline", seed, accuracy=0.9, conv3_aps=one_hot_aps(range(10), 0.9)))
        # Redundant 8 gets a strong unit in both seeds, 9 only a weak one (AP 0.5 < cut-off 0.8).
        aps = one_hot_aps(range(8), 0.95) + [[0.9 if k == 8 else 0.2 for k in range(10)],
                                              [0.5 if k == 9 else 0.2 for k in range(10)]]
        runs.append(make_run("baseline", seed, accuracy=0.95, conv3_aps=aps, experiment="usefulness",
                             effective=list(range(8))))
    report = summarise(config=dict(CONFIG, variants=["baseline"]), runs=runs, data={})
    useful = _section(report)["usefulness"]
    assert useful["redundant"] == [8, 9] and useful["classes"] == 28
    assert useful["emerged"] == {"8": True, "9": False}
    assert useful["per_digit"]["8"]["best_ap"]["mean"] == pytest.approx(0.9)
    assert useful["per_digit"]["9"]["best_ap"]["mean"] == pytest.approx(0.5)
    assert useful["mean_best_ap_redundant"] == pytest.approx(0.7)
    assert useful["mean_best_ap_effective"] == pytest.approx(0.95)
    assert "digit 8: a conv3 detector (AP >= 0.8) emerges in every seed" in useful["answer"][0]
    assert "emerges in no seed" in useful["answer"][1]


def _two_networks():
    runs = []
    for seed in (0, 1):
        jitter = 0.002 * seed
        # Ours: a digit-0 unit with AP 0.85 and precision@K 0.75, far below the seed's 1.00.
        runs.append(make_run("baseline", seed, accuracy=0.94, conv3_aps=one_hot_aps(range(10), 0.85 + jitter),
                             precision=0.75 + jitter))
        # The seed's network: precision@K 0.99, precision at recall (= AP here) 0.95: all within 0.05.
        runs.append(make_run("baseline", seed, accuracy=0.90, conv3_aps=one_hot_aps(range(10), 0.95 - jitter),
                             precision=0.99 - jitter, design="seed"))
    return summarise(config=dict(CONFIG, variants=["baseline"], network="both"), runs=runs, data={})


def test_each_network_gets_its_own_section_and_its_own_verdict_on_each_claim():
    report = _two_networks()
    assert list(report["networks"]) == ["mixturenet", "seed"]
    assert _section(report, "seed")["baseline_runs"] == ["seednet_baseline_s0", "seednet_baseline_s1"]
    assert _claim(report, "A conv3 unit detects digit 0", "MixtureNet")["verdict"] == "not reproduced"
    assert _claim(report, "A conv3 unit detects digit 0", "the seed")["verdict"] == "reproduced"
    assert _claim(report, "The network", "the seed")["verdict"] == "reproduced"  # 90.0% vs 91.7%


def test_the_best_unit_table_gives_each_figure_as_mean_and_spread_over_seeds():
    report = _two_networks()
    row0 = _section(report, "mixturenet")["best_units_over_seeds"][0]
    assert row0["digit"] == 0 and row0["units"] == ["conv3 u0", "conv3 u0"]
    assert row0["precision_at_k"]["100"]["mean"] == pytest.approx(0.751)
    assert row0["precision_at_k"]["100"]["std"] == pytest.approx(math.sqrt(2 * 0.001 ** 2))
    assert row0["positives"]["mean"] == 20  # 20% of 100 validation images
    md = to_markdown(report)
    assert "| conv3 u0, conv3 u0 | 0 | 0.75 ± 0.00 |" in md
    assert md.count("| seed paper: conv3 | 0 | 1.00 | 1.00 | 1.00 | 0.99 | 0.99 | 0.98 | 0.90 |") == 2


def test_one_seed_gives_no_verdict_on_the_digit_0_unit_either():
    runs = [make_run("baseline", 0, accuracy=0.9, conv3_aps=one_hot_aps(range(10), 0.5), precision=0.5)]
    report = summarise(config=dict(CONFIG, variants=["baseline"], seeds=1), runs=runs, data={})
    claim = _claim(report, "A conv3 unit detects digit 0")
    assert claim["verdict"] == "inconclusive" and "one seed" in claim["note"]
