"""What the load benchmark asserts and prints: correctness read back from the database, latency
percentiles, and the aggregation's accuracy against the simulated truth."""
from __future__ import annotations

import math
from collections import Counter, defaultdict

from django.db.models import Count, Exists, F, OuterRef, Q
from django.utils import timezone

from units.crowd.models import Annotation, Assignment, Hit, Qualification
from units.dissection.models import Layer
from units.projects.models import Pool
from units.results import aggregation
from units.results.selectors import layer_answers, vocabulary_for

from .crowd import accuracy_against_truth
from .driver import Tally


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): a value that was measured, never interpolated."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def correctness(*, batch_ids: list[int], tally: Tally) -> dict[str, int]:
    """The counts that must all be zero (bar `submitted`): read from the database after the run."""
    slots = Q(assignments__status__in=Assignment.SLOT_STATUSES)
    touched = Q(batch_id__in=batch_ids) | Q(pk__in={h for _, h, _ in tally.claimed})
    over = (Hit.objects.filter(touched).annotate(held=Count("assignments", filter=slots))
            .filter(held__gt=F("max_assignments")).count())
    twice_db = (Assignment.objects.filter(hit__in=Hit.objects.filter(touched)).values("hit", "worker")
                .annotate(n=Count("pk")).filter(n__gt=1).count())
    # A claim that hands back the worker's unfinished assignment is right; a second assignment is not.
    twice_seen = sum(1 for n in Counter((w, h) for w, h, _ in set(tally.claimed)).values() if n > 1)
    acked = {a for a, _, _ in tally.acked}
    stored = set(Annotation.objects.filter(
        assignment_id__in=acked, assignment__status__in=(Assignment.Status.SUBMITTED, Assignment.Status.APPROVED),
    ).values_list("assignment_id", flat=True))
    server_errors = sum(n for statuses in tally.statuses.values() for s, n in statuses.items() if s >= 500)
    stuck = Assignment.objects.filter(hit__batch_id__in=batch_ids, status=Assignment.Status.ACCEPTED,
                                      deadline__lt=timezone.now()).count()
    # A HIT of a project the annotator is not qualified for, or of a pool they are not in.
    unqualified = ~Exists(Qualification.objects.filter(user_id=OuterRef("worker_id"),
                                                       project_id=OuterRef("hit__batch__project_id")))
    outside_pool = Q(hit__batch__pool__isnull=False) & ~Exists(Pool.members.through.objects.filter(
        pool_id=OuterRef("hit__batch__pool_id"), user_id=OuterRef("worker_id")))
    outside = Assignment.objects.filter(hit__in=Hit.objects.filter(touched)).filter(unqualified | outside_pool).count()
    return {
        "submitted (2xx)": len(acked),
        "over-assigned HITs": over,
        "HITs twice to one annotator": twice_db + twice_seen,
        "2xx submits missing from the database": len(acked - stored),
        "5xx answers": server_errors,
        "requests without an answer": tally.no_answer,
        "assignments stuck past their deadline": stuck,
        "HITs given outside the annotator's projects or pool": outside,
    }


def failures(counts: dict[str, int]) -> list[str]:
    return [f"{name}: {value}" for name, value in counts.items() if name != "submitted (2xx)" and value]


def layer_accuracy(*, layer_ids: list[int], truth: dict[int, tuple[str, str]]) -> dict[str, float]:
    """Majority vote vs Dawid-Skene over what the crowd really submitted to these layers (one crowd, its
    skills estimated over all of them), scored against truth."""
    answers = []
    for layer in Layer.objects.select_related("job__dataset").filter(pk__in=layer_ids):
        answers += layer_answers(layer, vocabulary_for(layer.job.dataset))
    return accuracy_against_truth(aggregation.aggregate(answers), truth)


def latency_rows(tally: Tally) -> list[tuple[str, int, float, float, float, float]]:
    rows = []
    for endpoint in ("claim", "submit"):
        values = tally.latencies.get(endpoint, [])
        rows.append((endpoint, len(values), *(1000 * percentile(values, q) for q in (50, 95, 99)),
                     1000 * max(values) if values else float("nan")))
    both = tally.latencies.get("claim", []) + tally.latencies.get("submit", [])
    rows.append(("both", len(both), *(1000 * percentile(both, q) for q in (50, 95, 99)),
                 1000 * max(both) if both else float("nan")))
    return rows


def timeline_rows(tally: Tally, *, t0: float, window_s: float) -> list[dict]:
    """Per window of the run: 2xx submits per second and p99 of claim and submit (requests that finished
    in it), so a soak shows whether anything drifts as the tables grow."""
    windows: dict[int, dict[str, list]] = defaultdict(lambda: {"claim": [], "submit": [], "ok": []})
    for done, endpoint, status, seconds in tally.timeline:
        w = windows[int((done - t0) // window_s)]
        w[endpoint].append(seconds)
        if endpoint == "submit" and 200 <= status < 300:
            w["ok"].append(seconds)
    return [{"start": i * window_s, "end": (i + 1) * window_s, "per_s": len(w["ok"]) / window_s,
             "claim_p99": 1000 * percentile(w["claim"], 99), "submit_p99": 1000 * percentile(w["submit"], 99)}
            for i, w in sorted(windows.items())]
