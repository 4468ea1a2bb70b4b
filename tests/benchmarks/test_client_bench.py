"""`python -m benchmarks.client_bench` at a tiny size: a real server process, both ways of calling, the medians."""
import statistics

from benchmarks.client_bench import ClientBench, main, run_bench


def test_the_bench_starts_a_server_and_times_the_labels_call_raw_and_through_the_client(capsys):
    result = run_bench(units=8, rounds=3, warmup=1)  # each call is checked to return all 8 labels
    assert result.units == 8 and len(result.raw_ms) == len(result.client_ms) == 3
    assert all(t > 0 for t in result.raw_ms + result.client_ms)
    assert result.ratio == statistics.median(result.client_ms) / statistics.median(result.raw_ms)
    assert main(["--units", "4", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "labels of one 4-unit layer, median of 1 rounds" in out and "client / raw = " in out


def test_the_summary_is_the_medians_and_their_ratio():
    bench = ClientBench(units=512, rounds=3, raw_ms=[10.0, 30.0, 20.0], client_ms=[22.0, 21.0, 90.0])
    assert bench.raw_median == 20.0 and bench.client_median == 22.0 and bench.ratio == 1.1
    assert bench.paired_ratio == 2.2  # the rounds' own ratios: 2.2, 0.7, 4.5
    assert bench.lines()[-1] == "  client / raw = 1.100 (medians), 2.200 (median of the rounds' ratios)"

