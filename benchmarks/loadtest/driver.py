"""The HTTP side of the load benchmark: N simulated annotators, one thread and one keep-alive
connection each, looping POST /api/v1/assignments/next/ then .../submit/ through the real API.

Plain `http.client` on purpose: no pool, retry or redirect logic between us and the server, so
every number is one request. Each annotator signs in like a client would (POST /api/v1/auth/token/,
JSON key "token", then `Authorization: Token ...`).
"""
from __future__ import annotations

import http.client
import json
import os
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from .crowd import SimAnnotator

TIMEOUT_S = 30.0
# Signing in hashes a password (PBKDF2, on purpose slow): 64 at once can take a minute on 2 cores.
# Sign-ins happen before the measured period starts, so they get a longer timeout.
SIGN_IN_TIMEOUT_S = 300.0


@dataclass
class Tally:
    """What the crowd saw; appended to under one lock (a few microseconds per request)."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    statuses: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    acked: list[tuple[int, str, int]] = field(default_factory=list)  # (assignment, worker, hit) of 2xx submits
    claimed: list[tuple[str, int, int]] = field(default_factory=list)  # (worker, hit, assignment) of 201 claims
    # (when it finished on the monotonic clock, endpoint, status, seconds): the per-window timeline of a soak
    timeline: list[tuple[float, str, int, float]] = field(default_factory=list)
    no_answer: int = 0  # connection errors and timeouts
    reconnects: int = 0  # requests sent again on a new connection after the server closed an idle one
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, endpoint: str, status: int, seconds: float) -> None:
        done = time.monotonic()
        with self.lock:
            self.latencies[endpoint].append(seconds)
            self.statuses[endpoint][status] += 1
            self.timeline.append((done, endpoint, status, seconds))


class Client:
    def __init__(self, base_url: str, timeout: float = TIMEOUT_S):
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.conn: http.client.HTTPConnection | None = None
        self.timeout = timeout
        self.reconnects = 0
        self.headers = {"Content-Type": "application/json", "Accept": "application/json"}

    def post(self, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        reused = self.conn is not None
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        try:
            self.conn.request("POST", path, body=json.dumps(body or {}), headers=self.headers)
            response = self.conn.getresponse()
            raw = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self.conn.close()
            self.conn = None
            if not reused:
                raise
            # The server closed an idle keep-alive connection before reading this request (what any
            # pooled client retries); claim and an identical submit are safe to send again anyway.
            self.reconnects += 1
            return self.post(path, body)
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = None
            raise
        if response.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = None
        try:
            return response.status, json.loads(raw) if raw else None
        except ValueError:
            return response.status, None


def _annotate(base_url: str, annotator: SimAnnotator, password: str, truth: dict[int, tuple[str, str]],
              clock: dict[str, float], tally: Tally, start: threading.Barrier, seed: int, think_s: float) -> None:
    rng = random.Random(f"{seed}-{annotator.name}")
    client = Client(base_url, timeout=SIGN_IN_TIMEOUT_S)
    try:
        status, body = client.post("/api/v1/auth/token/", {"username": annotator.name, "password": password})
        if client.conn is not None and client.conn.sock is not None:
            client.conn.sock.settimeout(TIMEOUT_S)  # the measured requests: 30 s counts as no answer
        client.timeout = TIMEOUT_S
    except (OSError, http.client.HTTPException) as exc:
        tally.errors.append(f"{annotator.name}: sign-in failed: {exc}")
        start.wait()
        return
    if status != 200 or not body or "token" not in body:
        tally.errors.append(f"{annotator.name}: sign-in answered {status}")
        start.wait()
        return
    client.headers["Authorization"] = f"Token {body['token']}"
    start.wait()
    while time.monotonic() < clock["deadline"]:
        t0 = time.perf_counter()
        try:
            status, body = client.post("/api/v1/assignments/next/")
        except (OSError, http.client.HTTPException):
            with tally.lock:
                tally.no_answer += 1
            continue
        tally.record("claim", status, time.perf_counter() - t0)
        if status == 204:
            time.sleep(0.5)  # no work left for this annotator right now
            continue
        if status != 201 or not body:
            time.sleep(0.1)
            continue
        assignment, hit, unit = body["assignment"]["id"], body["hit"]["id"], body["unit"]["id"]
        with tally.lock:
            tally.claimed.append((annotator.name, hit, assignment))
        word, category = annotator.answer(truth.get(unit, ("", "none")), rng)
        answer = {"word": word, "category": category}
        if think_s > 0:  # looking at the pictures: uniform in [0.5, 1.5] x the mean, not past the end
            time.sleep(max(0.0, min(rng.uniform(0.5, 1.5) * think_s, clock["deadline"] - time.monotonic())))
        t0 = time.perf_counter()
        try:
            status, body = client.post(f"/api/v1/assignments/{assignment}/submit/", answer)
        except (OSError, http.client.HTTPException):
            with tally.lock:
                tally.no_answer += 1
            continue
        tally.record("submit", status, time.perf_counter() - t0)
        if 200 <= status < 300:
            with tally.lock:
                tally.acked.append((assignment, annotator.name, hit))
    with tally.lock:
        tally.reconnects += client.reconnects


@dataclass
class LoadResult:
    tally: Tally
    t0: float  # monotonic clock when the measured period began (everyone signed in)
    wall_s: float
    cpu_s: float  # the generator's own CPU time (user + system) during the run


def drive(*, base_url: str, crowd: list[SimAnnotator], password: str, truth: dict[int, tuple[str, str]],
          duration_s: float, seed: int = 0, on_start=None, think_s: float = 0.0) -> LoadResult:
    """Run the crowd against the site for `duration_s` seconds, counted from when everyone has signed in.

    `think_s`: each annotator's mean pause between getting a HIT and handing it in (0: none, the
    closed loop where the server alone sets the pace)."""
    tally = Tally()
    clock: dict[str, float] = {}

    def begin() -> None:  # runs once, as the last annotator finishes signing in
        if on_start is not None:
            on_start()  # e.g. sample the servers' CPU, so the sign-ins' password hashing is not counted
        clock["t0"], clock["cpu0"] = time.monotonic(), _cpu()
        clock["deadline"] = clock["t0"] + duration_s

    start = threading.Barrier(len(crowd), action=begin)
    threads = [threading.Thread(target=_annotate, daemon=True,
                                args=(base_url, a, password, truth, clock, tally, start, seed, think_s)) for a in crowd]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return LoadResult(tally=tally, t0=clock["t0"], wall_s=time.monotonic() - clock["t0"], cpu_s=_cpu() - clock["cpu0"])


def _cpu() -> float:
    times = os.times()
    return times.user + times.system
