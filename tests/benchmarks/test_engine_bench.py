"""`make bench` end to end on a tiny set: the synthetic set is written (in a child process, so its memory
does not lift the measured peaks) and reused, and one run measures both passes."""
from benchmarks.engine_bench import BenchSet, run_bench
from tasks.engine.dissect import DissectOptions


def test_the_bench_writes_its_set_once_in_a_child_and_measures_both_passes(tmp_path):
    data = tmp_path / "data"
    options = DissectOptions(layers=["layer4"], batch_size=4, render=False)
    first = run_bench(options, bench_set=BenchSet(images=8, size=32, data=str(data)), workdir=str(tmp_path))
    assert first.images == 8 and (data / "index.csv").is_file()
    written = sorted((p.name, p.stat().st_mtime_ns) for p in (data / "images" / "synthetic").iterdir())
    assert len([name for name, _ in written if name.endswith(".jpg")]) == 8
    again = run_bench(options, bench_set=BenchSet(images=8, size=32, data=str(data)), workdir=str(tmp_path))
    assert again.images == 8
    # reused
    assert sorted((p.name, p.stat().st_mtime_ns) for p in (data / "images" / "synthetic").iterdir()) == written
    for result in (first, again):
        assert result.forward_s > 0 and result.dissect_s > 0 and result.peak_rss_mib > 0


def test_interleaved_rounds_bracket_each_dissection_and_report_the_median_round(tmp_path):
    import statistics

    result = run_bench(DissectOptions(layers=["layer4"], batch_size=4, render=True), rounds=3,
                       bench_set=BenchSet(images=8, size=32, data=str(tmp_path / "data")), workdir=str(tmp_path))
    assert len(result.forward_runs) == 4 and len(result.round_ratios) == 3  # F D F D F D F
    assert result.ratio == statistics.median(result.round_ratios)
    assert result.forward_s == sum(result.forward_runs) / 4
    assert "render" in result.dissect_timings  # the last round renders
    line = next(x for x in result.lines() if x.startswith("ratio to the forward pass"))
    assert "median of 3 interleaved rounds" in line


def test_cpu_seconds_are_measured_per_run_and_their_ratio_is_the_median_dissection_over_the_mean_forward(tmp_path):
    import statistics

    result = run_bench(DissectOptions(layers=["layer4"], batch_size=4, render=False, num_workers=0), rounds=2,
                       bench_set=BenchSet(images=8, size=32, data=str(tmp_path / "data")), workdir=str(tmp_path))
    assert len(result.forward_cpu_runs) == 3 and len(result.dissect_cpu_runs) == 2  # F D F D F
    assert all(t > 0 for t in result.forward_cpu_runs + result.dissect_cpu_runs)
    expected = statistics.median(result.dissect_cpu_runs) / (sum(result.forward_cpu_runs) / 3)
    assert abs(result.cpu_ratio - expected) < 1e-12
    assert any(line.startswith("CPU time (process and its loader workers)") for line in result.lines())


def test_cpu_seconds_count_the_work_of_a_child_process_once_it_has_ended():
    import multiprocessing

    from benchmarks.engine_bench import cpu_seconds

    before = cpu_seconds()
    child = multiprocessing.get_context("spawn").Process(target=sum, args=(range(20_000_000),))
    child.start()
    child.join()
    assert cpu_seconds() - before > 0.2  # the child's loop, reaped by join()
