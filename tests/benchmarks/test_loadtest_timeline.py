"""The soak's per-window timeline: throughput and p99 per window, counted by hand here."""
from benchmarks.loadtest.checks import timeline_rows
from benchmarks.loadtest.driver import Tally


def test_each_window_counts_its_own_2xx_submits_and_takes_the_p99_of_what_finished_in_it():
    tally = Tally()
    t0 = 1000.0
    # window 0 (0-10 s): two submits ok, one refused; claims of 0.1 and 0.3 s
    tally.timeline += [(t0 + 1, "claim", 201, 0.1), (t0 + 2, "submit", 200, 0.2), (t0 + 3, "claim", 201, 0.3),
                       (t0 + 4, "submit", 409, 0.9), (t0 + 9.99, "submit", 200, 0.05)]
    # window 2 (20-30 s): one submit; window 1 has nothing
    tally.timeline += [(t0 + 20, "claim", 201, 2.0), (t0 + 25, "submit", 201, 0.4)]
    rows = timeline_rows(tally, t0=t0, window_s=10.0)
    assert [(r["start"], r["end"]) for r in rows] == [(0.0, 10.0), (20.0, 30.0)]
    assert rows[0]["per_s"] == 0.2 and rows[1]["per_s"] == 0.1  # 2 and 1 submits in 10 s
    assert rows[0]["claim_p99"] == 300.0 and rows[0]["submit_p99"] == 900.0  # nearest rank: the largest of 3
    assert rows[1]["claim_p99"] == 2000.0 and rows[1]["submit_p99"] == 400.0
