"""`python -m benchmarks.client_bench`: one layer's labels in one call, raw HTTP against the Python client.

A real server on 127.0.0.1 (gunicorn, one sync worker, SQLite in a temporary folder, the site's own
settings) serves a finished job whose layer `conv3` has `--units` units, each with the crowd's
aggregated label. A requester of its project holds an API token. Each round times the call both
ways, in alternating order so that drift hits both alike:
- raw: one `requests` GET of `/api/v1/labels/?job=J&layer=conv3&page_size=N` with the token, JSON decoded;
- client: `UnitCrowd(url, token=...).labels(job, "conv3")` (the same GET, read into typed rows).
It prints the median of each over `--rounds` rounds, their ratio and the median of the rounds' own
ratios (robust to drift on a shared machine). Targets: the call under 300 ms,
the client within 10% of raw HTTP.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

LAYER = "conv3"
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class ClientBench:
    units: int
    rounds: int
    raw_ms: list[float]
    client_ms: list[float]

    @property
    def raw_median(self) -> float:
        return statistics.median(self.raw_ms)

    @property
    def client_median(self) -> float:
        return statistics.median(self.client_ms)

    @property
    def ratio(self) -> float:
        return self.client_median / self.raw_median

    @property
    def paired_ratio(self) -> float:
        """The median of each round's client / raw: on a busy machine, drift between rounds cancels out."""
        return statistics.median(c / r for c, r in zip(self.client_ms, self.raw_ms))

    def lines(self) -> list[str]:
        return [
            f"labels of one {self.units}-unit layer, median of {self.rounds} rounds:",
            f"  raw HTTP  {self.raw_median:8.1f} ms  (min {min(self.raw_ms):.1f}, max {max(self.raw_ms):.1f})",
            f"  client    {self.client_median:8.1f} ms  (min {min(self.client_ms):.1f}, max {max(self.client_ms):.1f})",
            f"  client / raw = {self.ratio:.3f} (medians), {self.paired_ratio:.3f} (median of the rounds' ratios)",
        ]


def seed(units: int) -> dict:
    """In the server's environment (a child process): migrate, then one finished job with `units` labelled
    units and a requester with a token. Returns {"job": id, "token": key}."""
    from benchmarks.site import setup_django

    setup_django()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from knox.models import AuthToken

    from annotate_site.roles import REQUESTERS_GROUP
    from benchmarks.loadtest.seed import loadtest_seed
    from units.dissection.models import Layer, Unit
    from units.projects.models import Membership
    from units.results.models import UnitAggregate

    call_command("migrate", verbosity=0, interactive=False)
    seeded = loadtest_seed(name="clientbench", n_units=units, assignments=3, usernames=[],
                           password=secrets.token_urlsafe(12))
    layer = Layer.objects.select_related("job").get(pk=seeded.layer_id)
    aggregates = []
    for unit in Unit.objects.filter(layer=layer).order_by("index"):
        word, category = seeded.truth[unit.pk]
        crowd = word if unit.index % 4 else "stroke"  # every fourth unit disagrees with its IoU label
        aggregates.append(UnitAggregate(unit=unit, crowd_word=crowd, category_mv=category, agreement=0.8,
                                        category_agreement=0.9, interpretable=True, n_annotations=3,
                                        word_match=crowd == word, category_match=True))
    UnitAggregate.objects.bulk_create(aggregates)
    user = get_user_model().objects.create_user("clientbench-requester", password=secrets.token_urlsafe(12))
    user.groups.add(Group.objects.get_or_create(name=REQUESTERS_GROUP)[0])
    Membership.objects.create(project=layer.job.project, user=user, role="requester")
    _, token = AuthToken.objects.create(user)
    return {"job": layer.job_id, "token": token}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.returncode} before answering")
        try:
            if requests.get(f"{url}/healthz", timeout=2).ok:
                return
        except requests.RequestException:  # not listening yet, or too busy starting to answer in time
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {url}/healthz within {timeout:.0f} s")


def run_bench(*, units: int = 512, rounds: int = 31, warmup: int = 2) -> ClientBench:
    """Start the server, seed it, and time the labels call raw and through the client."""
    from unitcrowd_client import UnitCrowd

    with tempfile.TemporaryDirectory(prefix="clientbench-") as tmp:
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "annotate_site.settings", "DEBUG": "0",
               "SECRET_KEY": secrets.token_urlsafe(40), "UNITCROWD_VAR_DIR": tmp,
               "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3", "CELERY_BROKER_URL": "", "CACHE_URL": "",
               "LOG_LEVEL": "WARNING"}
        out = subprocess.run([sys.executable, "-m", "benchmarks.client_bench", "--seed-child", str(units)],
                             cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"seeding failed:\n{out.stderr[-3000:]}")
        seeded = json.loads(out.stdout.strip().splitlines()[-1])
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        gunicorn = Path(sys.executable).with_name("gunicorn")
        server = subprocess.Popen(
            [str(gunicorn), "annotate_site.wsgi", "--workers", "1", "--bind", f"127.0.0.1:{port}",
             "--keep-alive", "75", "--error-logfile", str(Path(tmp) / "gunicorn.log")],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            _wait_up(url, server)
            return _measure(url, seeded["job"], seeded["token"], units, rounds, warmup, UnitCrowd)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _measure(url: str, job: int, token: str, units: int, rounds: int, warmup: int, client_class) -> ClientBench:
    raw = requests.Session()
    raw.headers["Authorization"] = f"Token {token}"
    params = {"job": job, "layer": LAYER, "page_size": max(units, 1)}

    def by_hand() -> int:
        response = raw.get(f"{url}/api/v1/labels/", params=params, timeout=60)
        response.raise_for_status()
        return len(response.json()["results"])

    uc = client_class(url, token=token)

    def by_client() -> int:
        return len(uc.labels(job, LAYER))

    timings: dict[str, list[float]] = {"raw": [], "client": []}
    ways = {"raw": by_hand, "client": by_client}
    for n in range(warmup + rounds):
        order = ["raw", "client"] if n % 2 == 0 else ["client", "raw"]
        for way in order:
            started = time.perf_counter()
            got = ways[way]()
            elapsed = (time.perf_counter() - started) * 1000
            if got != units:
                raise RuntimeError(f"the {way} call returned {got} labels, expected {units}")
            if n >= warmup:
                timings[way].append(elapsed)
    uc.close()
    raw.close()
    return ClientBench(units=units, rounds=rounds, raw_ms=timings["raw"], client_ms=timings["client"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--units", type=int, default=512, help="units of the layer (512)")
    parser.add_argument("--rounds", type=int, default=31, help="timed rounds, after 2 warm-up rounds (31)")
    parser.add_argument("--seed-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.seed_child is not None:
        print(json.dumps(seed(args.seed_child)))
        return 0
    if args.units < 1 or args.rounds < 1:
        parser.error("--units and --rounds must be at least 1")
    result = run_bench(units=args.units, rounds=args.rounds)
    print("\n".join(result.lines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
