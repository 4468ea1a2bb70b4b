"""The load benchmark: seed jobs in 3 projects (one a private pool's; `--projects`), drive a simulated
crowd through the real HTTP API of a running site, print throughput, latency percentiles, correctness
counts and aggregation quality.

    python -m benchmarks.loadtest --url http://127.0.0.1:8011 --annotators 64 --duration 90
    python -m benchmarks.loadtest --no-load            # only compare aggregation methods, no site
    python -m benchmarks.loadtest --spam-sweep         # spammers 0/10/30% with and without the quality rule
    python -m benchmarks.loadtest --export-memory 100000   # peak RSS of each export of 100,000 annotations
    make stack && make loadtest                    # the production-shaped stack on this machine

It must use the site's database (same DATABASE_URL): it seeds the rows there and reads them back.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import threading
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from benchmarks.loadtest.checks import correctness, failures, latency_rows, layer_accuracy, timeline_rows
from benchmarks.loadtest.crowd import DEFAULT_RULE, SENTINELS_PER_HIT, make_crowd, simulate_table, spammer_sweep
from benchmarks.loadtest.driver import drive
from benchmarks.loadtest.faults import FaultPlan, children, wait_after
from benchmarks.loadtest.export_memory import export_jobs, measure, run_child, seed_annotations
from benchmarks.loadtest.seed import POOL_PROJECT, loadtest_seed, pool_member

ACCURACIES = (0.6, 0.75, 0.9)


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and its children (gunicorn's master + workers), in KiB."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total


def _machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from /proc/stat (busy: all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    return total - fields[3] - fields[4], total


def _cpu_ticks(pid: int) -> int:
    """User + system clock ticks of a process and its live children."""
    total = 0
    for p in [pid, *children(pid)]:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total


def _secs(value) -> str:
    return "never (within the limit)" if value is None else f"{value:.0f} s"


class Command(BaseCommand):
    help = "Drive a simulated crowd through the HTTP API and print throughput, latency, correctness and accuracy."

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="the running site")
        parser.add_argument("--annotators", type=int, default=64)
        parser.add_argument("--duration", type=float, default=90.0, help="seconds of load")
        parser.add_argument("--hits", type=int, default=512)
        parser.add_argument("--projects", type=int, default=3,
                            help="projects the HITs and annotators are spread over (default 3); with more than one, "
                                 "the second project's batch goes to a private pool of a share of the annotators")
        parser.add_argument("--assignments", type=int, default=5)
        parser.add_argument("--accuracy", type=float, default=0.75, help="honest annotators' mean accuracy")
        parser.add_argument("--spammers", type=float, default=0.1, help="share of annotators answering at random")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--no-load", action="store_true", help="only compare aggregation methods in-process")
        parser.add_argument("--spam-sweep", type=int, metavar="SEEDS", nargs="?", const=3,
                            help="only the spammer sweep (0/10/30%% spammers, with and without the quality rule), "
                                 "averaged over SEEDS simulated crowds (default 3)")
        parser.add_argument("--check", action="store_true", help="exit 1 when a correctness count is not zero")
        parser.add_argument("--export-memory", type=int, metavar="N", nargs="?", const=100000,
                            help="seed N annotations (default 100000) and print each export's peak RSS")
        parser.add_argument("--export-child", type=int, help=argparse.SUPPRESS)  # one measured export run
        parser.add_argument("--think", type=float, default=0.0, metavar="SECONDS",
                            help="each annotator's mean pause between a claim and its submit (default 0: a closed "
                                 "loop, the server alone sets the pace)")
        parser.add_argument("--faults", action="store_true",
                            help="kill -9 a gunicorn worker at 1/3 and the Celery worker at 1/2 of the run (needs "
                                 "--pidfile web=... and worker=... and --restart-worker), then wait for every open "
                                 "assignment to be freed and the aggregation to catch up")
        parser.add_argument("--restart-worker", default="benchmarks/stack.sh worker",
                            help="command that starts the Celery worker again after --faults killed it")
        parser.add_argument("--assignment-seconds", type=int, default=None,
                            help="assignment duration of the seeded HITs (default 900; 30 with --faults)")
        parser.add_argument("--window", type=float, default=None, metavar="SECONDS",
                            help="print throughput, p99 and the servers' RSS per window of this length (default: 60 s "
                                 "windows for runs of 5 minutes or more, none for shorter runs)")
        parser.add_argument("--pidfile", action="append", default=[],
                            help="NAME=FILE of a server process (with its children) whose RSS and CPU to report")

    def handle(self, *args, **opts):
        if opts["export_child"]:
            self.stdout.write(json.dumps(run_child(opts["export_child"])))
            return
        if opts["export_memory"] is not None:
            self._export_memory(opts["export_memory"])
            return
        if opts["annotators"] < 1 or opts["duration"] <= 0 or opts["hits"] < 1 or opts["assignments"] < 1:
            raise CommandError("--annotators, --duration, --hits and --assignments must be positive.")
        if not 0 <= opts["accuracy"] <= 1 or not 0 <= opts["spammers"] <= 1:
            raise CommandError("--accuracy and --spammers are shares between 0 and 1.")
        if opts["spam_sweep"] is not None:
            self._spam_sweep(opts)
            return
        if not opts["no_load"]:
            self._load(opts)
        self._quality_table(opts)

    def _export_memory(self, n: int) -> None:
        if n < 1:
            raise CommandError("--export-memory takes a positive number of annotations.")
        started = time.monotonic()
        layer_id, batch_id = seed_annotations(n)
        self.stdout.write(f"seeded {n} annotations in {time.monotonic() - started:.0f} s; "
                          "each export runs in a fresh process (peak RSS = ru_maxrss)")
        self.stdout.write(f"{'export':<12} {'RSS before MB':>14} {'peak MB':>8} {'delta MB':>9} {'file MB':>8}")
        for export in export_jobs(layer_id, batch_id):
            r = measure(export)
            self.stdout.write(f"{r['kind']:<12} {r['before_mib']:>14.1f} {r['peak_mib']:>8.1f} "
                              f"{r['peak_mib'] - r['before_mib']:>9.1f} {r['bytes'] / 2**20:>8.1f}")

    def _quality_table(self, opts) -> None:
        rows = simulate_table(n_units=opts["hits"], redundancy=opts["assignments"], accuracies=ACCURACIES,
                              n_annotators=opts["annotators"], spammer_share=opts["spammers"], seed=opts["seed"])
        self.stdout.write(f"\naggregation vs truth, simulated in-process ({opts['hits']} units x {opts['assignments']} "
                          f"answers, {opts['annotators']} annotators, {opts['spammers']:.0%} spammers)")
        self.stdout.write(f"  {'accuracy':>8} {'category MV':>12} {'category DS':>12} {'one-coin DS':>12} "
                          f"{'published':>10} {'word':>8}")
        for r in rows:
            self.stdout.write(f"  {r['accuracy']:>8.0%} {r['category_mv']:>12.1%} {r['category_ds']:>12.1%} "
                              f"{r['category_ds1']:>12.1%} {r['category']:>10.1%} {r['word']:>8.1%}")

    def _spam_sweep(self, opts) -> None:
        seeds = range(opts["seed"], opts["seed"] + max(1, opts["spam_sweep"]))
        runs = [spammer_sweep(n_units=opts["hits"], redundancy=opts["assignments"], accuracy=opts["accuracy"],
                              n_annotators=opts["annotators"], seed=seed) for seed in seeds]
        rule = DEFAULT_RULE
        self.stdout.write(f"\nspammer sweep, in-process ({opts['hits']} units x {opts['assignments']} answers, "
                          f"{opts['annotators']} annotators of accuracy {opts['accuracy']:.0%}, "
                          f"{SENTINELS_PER_HIT} sentinels per HIT; rule: block below {rule.min_pass_rate:.0%} "
                          f"checks passed after {rule.min_answers} answers), mean of {len(runs)} crowd(s)")
        self.stdout.write(f"  {'spammers':>8} {'rule':>5} {'category MV':>12} {'category DS':>12} {'word vote':>10} "
                          f"{'spam answers':>13} {'spammers blocked':>17} {'honest blocked':>15}")
        for i, first in enumerate(runs[0]):
            mean = {key: sum(run[i][key] for run in runs) / len(runs)
                    for key in ("category_mv", "category_ds", "word", "spam_answers", "blocked_spammers",
                                "blocked_honest")}
            self.stdout.write(f"  {first['spammers']:>8.0%} {'on' if first['rule'] else 'off':>5} "
                              f"{mean['category_mv']:>12.1%} {mean['category_ds']:>12.1%} {mean['word']:>10.1%} "
                              f"{mean['spam_answers']:>13.1%} {mean['blocked_spammers']:>17.1f} "
                              f"{mean['blocked_honest']:>15.1f}")

    def _servers(self, opts) -> dict[str, int]:
        servers = {}
        for item in opts["pidfile"]:
            name, _, path = item.partition("=")
            try:
                servers[name] = int(Path(path).read_text().split()[0])
            except (OSError, ValueError, IndexError):
                raise CommandError(f"--pidfile {item}: no process id could be read from {path!r}.") from None
        return servers

    def _rss_now(self, opts) -> dict[str, int]:
        """RSS (KiB) of each --pidfile server now, its pid read again (a restarted worker has a new one)."""
        try:
            return {n: _rss_kib(p) for n, p in self._servers(opts).items()}
        except CommandError:
            return {}

    def _timeline(self, result, window: float, samples: list[tuple[float, dict[str, int]]],
                  rss0: dict[str, int]) -> None:
        names = sorted(rss0)
        self.stdout.write(f"timeline ({window:.0f} s windows; server RSS sampled at each window's end, MiB):")
        self.stdout.write(f"  {'seconds':>11} {'subm/s':>7} {'claim p99':>10} {'submit p99':>11}"
                          + "".join(f" {n + ' RSS':>11}" for n in names))
        self.stdout.write(f"  {'start':>11} {'':>7} {'':>10} "
                          f"{'':>11}" + "".join(f" {rss0[n] / 1024:>11.0f}" for n in names))
        for i, row in enumerate(timeline_rows(result.tally, t0=result.t0, window_s=window)):
            if row["start"] >= result.wall_s:
                break
            rss = samples[i][1] if i < len(samples) else {}
            self.stdout.write(f"  {row['start']:>5.0f}-{min(row['end'], result.wall_s):<5.0f} {row['per_s']:>7.1f} "
                              f"{row['claim_p99']:>10.0f} {row['submit_p99']:>11.0f}"
                              + "".join(f" {rss[n] / 1024:>11.0f}" if n in rss else f" {'-':>11}" for n in names))

    def _load(self, opts) -> None:
        servers = self._servers(opts)
        stamp = time.strftime("%Y%m%d%H%M%S")
        name = f"loadtest-{stamp}-{secrets.token_hex(2)}"
        password = secrets.token_urlsafe(12)
        crowd = make_crowd(opts["annotators"], accuracy=opts["accuracy"], spammer_share=opts["spammers"],
                           seed=opts["seed"], prefix=f"{name}-a")
        duration = opts["assignment_seconds"] or (30 if opts["faults"] else 900)
        plan = None
        if opts["faults"]:
            files = dict(item.partition("=")[::2] for item in opts["pidfile"])
            if "web" not in files or "worker" not in files:
                raise CommandError("--faults needs --pidfile web=FILE (gunicorn's master) and --pidfile worker=FILE.")
            plan = FaultPlan(web_pidfile=Path(files["web"]), worker_pidfile=Path(files["worker"]),
                             restart=opts["restart_worker"], web_at=opts["duration"] / 3,
                             worker_at=opts["duration"] / 2)
        if opts["projects"] < 1 or opts["hits"] < opts["projects"] or (
                opts["projects"] > 1 and opts["annotators"] < opts["projects"]):
            raise CommandError("--projects: at least 1, with at least one HIT (and, with a pool, one annotator) "
                               "per project.")
        seeded = loadtest_seed(name=name, n_units=opts["hits"], assignments=opts["assignments"],
                               usernames=[a.name for a in crowd], password=password, seed=opts["seed"],
                               duration_s=duration, projects=opts["projects"])
        spread = (f"over {opts['projects']} projects, project {POOL_PROJECT + 1}'s to a private pool of "
                  f"{sum(pool_member(i, opts['projects']) for i in range(len(crowd)))} annotators"
                  if opts["projects"] > 1 else "in one project, open to every annotator")
        self.stdout.write(f"seeded {name}: {opts['hits']} HITs x {opts['assignments']} assignments, "
                          f"{opts['annotators']} annotators, {spread}; driving {opts['url']} for "
                          f"{opts['duration']:.0f} s")
        rss0: dict[str, int] = {}
        ticks0: dict[str, int] = {}
        load0: list[float] = []
        busy0: list[int] = []

        window = opts["window"] if opts["window"] is not None else (60.0 if opts["duration"] >= 300 else 0.0)
        samples: list[tuple[float, dict[str, int]]] = []  # (seconds into the run, RSS KiB per server)
        sampling = threading.Event()

        def sample(t0: float) -> None:
            while not sampling.wait(window):
                samples.append((time.monotonic() - t0, self._rss_now(opts)))

        def on_start() -> None:
            rss0.update({n: _rss_kib(p) for n, p in servers.items()})
            if window > 0:
                threading.Thread(target=sample, args=(time.monotonic(),), daemon=True).start()
            ticks0.update({n: _cpu_ticks(p) for n, p in servers.items()})
            load0[:] = os.getloadavg()
            busy0[:] = _machine_ticks()
            if plan is not None:
                plan.start(time.monotonic())

        result = drive(base_url=opts["url"], crowd=crowd, password=password, truth=seeded.truth,
                       duration_s=opts["duration"], seed=opts["seed"], on_start=on_start, think_s=opts["think"])
        sampling.set()
        if plan is not None:  # the killed worker's pid is gone: measure the new one from here on
            servers = self._servers(opts)
        load1 = os.getloadavg()
        busy1 = _machine_ticks()
        tally = result.tally
        for error in tally.errors[:5]:
            self.stderr.write(error)
        counts = correctness(batch_ids=seeded.batch_ids, tally=tally)
        ncpu = os.cpu_count() or 1
        self.stdout.write(f"\nsubmissions: {counts['submitted (2xx)']} in {result.wall_s:.1f} s = "
                          f"{counts['submitted (2xx)'] / result.wall_s:.1f} per second")
        self.stdout.write(f"  {'endpoint':<8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for endpoint, n, p50, p95, p99, worst in latency_rows(tally):
            self.stdout.write(f"  {endpoint:<8} {n:>6} {p50:>8.0f} {p95:>8.0f} {p99:>8.0f} {worst:>8.0f}")
        for endpoint, statuses in sorted(tally.statuses.items()):
            self.stdout.write(f"  {endpoint} statuses: {dict(sorted(statuses.items()))}")
        self.stdout.write("correctness:")
        for key, value in counts.items():
            self.stdout.write(f"  {key}: {value}")
        self.stdout.write(f"  (requests resent after the server closed an idle keep-alive connection: "
                          f"{tally.reconnects})")
        self.stdout.write(f"load generator CPU: {result.cpu_s:.1f} s over {result.wall_s:.1f} s = "
                          f"{result.cpu_s / result.wall_s / ncpu:.0%} of the machine's {ncpu} cores")
        tick = os.sysconf("SC_CLK_TCK")
        for n, pid in servers.items():
            if plan is not None and n == "worker":
                self.stdout.write(f"worker: restarted during the run (now pid {pid}, RSS {_rss_kib(pid) / 1024:.0f} "
                                  f"MiB)")
                continue
            if plan is not None and n == "web":  # the killed gunicorn worker took its CPU ticks with it
                self.stdout.write(f"{n} (pid {pid}): RSS {rss0[n] / 1024:.0f} MiB -> {_rss_kib(pid) / 1024:.0f} MiB "
                                  "(CPU not measured: a killed worker's ticks leave with it)")
                continue
            cpu = (_cpu_ticks(pid) - ticks0[n]) / tick  # live children only: one that exited takes its ticks
            self.stdout.write(f"{n} (pid {pid}): RSS {rss0[n] / 1024:.0f} MiB -> {_rss_kib(pid) / 1024:.0f} MiB, "
                              f"CPU {cpu:.1f} s = {cpu / result.wall_s / ncpu:.0%} of the machine")
        if window > 0:
            self._timeline(result, window, samples, rss0)
        busy = (busy1[0] - busy0[0]) / tick
        total = (busy1[1] - busy0[1]) / tick
        self.stdout.write(f"machine: {busy:.1f} s busy of {total:.1f} s = {busy / max(total, 1e-9):.0%} "
                          f"(/proc/stat; everything on it: servers, database, Redis, the generator)")
        self.stdout.write(f"load average before/after: {load0[0]:.2f} / {load1[0]:.2f} (1 min)")
        acc = layer_accuracy(layer_ids=seeded.layer_ids, truth=seeded.truth)
        self.stdout.write(f"aggregation of this run's answers ({acc['units']} units answered, crowd accuracy "
                          f"{opts['accuracy']:.0%}): category published {acc['category']:.1%}, "
                          f"MV {acc['category_mv']:.1%}, word {acc['word']:.1%}")
        if opts["think"] > 0:
            self.stdout.write(f"(each annotator paused {opts['think']:.1f} s on average between claim and submit)")
        problems = failures(counts)
        if plan is not None:
            self.stdout.write("faults:")
            for event in plan.events:
                self.stdout.write(f"  {event}")
            # Requests cut by the killed gunicorn worker have no answer: that is the fault, not a failure.
            # What must hold is checked after the run: nothing lost (above), nothing stuck, aggregation caught up.
            problems = [p for p in problems if not p.startswith(("requests without an answer",
                                                                  "assignments stuck past their deadline"))]
            after = wait_after(batch_ids=seeded.batch_ids, layer_ids=seeded.layer_ids, limit_s=duration + 180)
            self.stdout.write(
                f"after the run: open assignments all freed after {_secs(after['freed_after_s'])} "
                f"(assignment duration {duration} s; {after['still_accepted']} still accepted); aggregation caught up "
                f"after {_secs(after['caught_up_after_s'])} ({after['aggregated_answers']} of "
                f"{after['counted_answers']} counted answers in the newest run)")
            if after["still_accepted"]:
                problems.append(f"assignments still accepted past their deadline: {after['still_accepted']}")
            if after["aggregated_answers"] != after["counted_answers"]:
                problems.append("aggregation did not catch up: "
                                f"{after['aggregated_answers']} of {after['counted_answers']} answers")
        if problems and opts["check"]:
            raise CommandError("correctness failed: " + "; ".join(problems))
