"""Aggregate verify HITs' yes/no answers (majority vote and Dawid-Skene) and the per-layer precision table.

Framework-free, like aggregation.py, whose Crowd-Kit settings and skill reading it reuses, so the
arithmetic can be checked against hand-worked cases. "unsure" answers are counted but cast no vote.
"""
from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field

from .aggregation import DS_ITERATIONS, DS_TOLERANCE, dawid_skene_skill

YES, NO, UNSURE = "yes", "no", "unsure"


@dataclass(frozen=True)
class Verdict:
    task: Hashable  # one verify HIT: a unit and a proposed label
    worker: Hashable
    verdict: str  # yes, no or unsure


@dataclass
class VerdictResult:
    task: Hashable
    n_yes: int = 0
    n_no: int = 0
    n_unsure: int = 0
    accepted_mv: bool | None = None  # None: no yes/no answer yet
    agreement: float | None = None  # share of the winning yes/no answer
    accepted_ds: bool | None = None
    ds_probability: float | None = None


@dataclass
class VerdictAggregation:
    tasks: dict[Hashable, VerdictResult] = field(default_factory=dict)
    ds_skills: dict[Hashable, float] = field(default_factory=dict)


def aggregate_verdicts(verdicts: Sequence[Verdict], *, ds_iterations: int = DS_ITERATIONS,
                       ds_tol: float = DS_TOLERANCE) -> VerdictAggregation:
    """Per task: counts, majority vote (a label is accepted by a strict majority of yes over no: a tie
    does not accept it) and Dawid-Skene over every task of the scope; per worker: Dawid-Skene skill."""
    out = VerdictAggregation()
    for v in verdicts:
        res = out.tasks.setdefault(v.task, VerdictResult(task=v.task))
        if v.verdict == YES:
            res.n_yes += 1
        elif v.verdict == NO:
            res.n_no += 1
        elif v.verdict == UNSURE:
            res.n_unsure += 1
        else:
            raise ValueError(f"unknown verdict {v.verdict!r}")
    for res in out.tasks.values():
        voted = res.n_yes + res.n_no
        if voted:
            res.accepted_mv = res.n_yes > res.n_no
            res.agreement = max(res.n_yes, res.n_no) / voted

    import pandas as pd  # here, not at import time (see aggregation.py)
    from crowdkit.aggregation import DawidSkene

    frame = pd.DataFrame([(v.task, v.worker, v.verdict) for v in verdicts if v.verdict in (YES, NO)],
                         columns=["task", "worker", "label"])
    if frame.empty:
        return out
    if frame["label"].nunique() > 1:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"crowdkit\.")  # pandas deprecations inside Crowd-Kit 1.4
            ds = DawidSkene(n_iter=ds_iterations, tol=ds_tol).fit(frame)
        for task, label in ds.labels_.items():
            out.tasks[task].accepted_ds = label == YES
            out.tasks[task].ds_probability = float(ds.probas_.loc[task, label])
        out.ds_skills = dawid_skene_skill(ds)
    else:  # one answer everywhere: nothing for Dawid-Skene to weigh; it agrees with the vote
        for res in out.tasks.values():
            if res.accepted_mv is not None:
                res.accepted_ds, res.ds_probability = res.accepted_mv, 1.0
        out.ds_skills = {w: 1.0 for w in frame["worker"].unique()}
    return out


@dataclass(frozen=True)
class PrecisionRow:
    """Network Dissection's human evaluation, one label source of one layer."""

    source: str
    judged: int  # units with at least one yes/no answer
    accepted_mv: int
    accepted_ds: int
    unsure: int  # "unsure" answers over the judged and unjudged units of the source
    agreement: float | None  # mean share of the winning answer (the paper's human consistency)

    @property
    def precision_mv(self) -> float | None:
        return self.accepted_mv / self.judged if self.judged else None

    @property
    def precision_ds(self) -> float | None:
        return self.accepted_ds / self.judged if self.judged else None

    def as_dict(self) -> dict:
        return {"source": self.source, "judged": self.judged, "accepted_mv": self.accepted_mv,
                "precision_mv": self.precision_mv, "accepted_ds": self.accepted_ds,
                "precision_ds": self.precision_ds, "unsure_answers": self.unsure, "agreement": self.agreement}


def precision_table(results: Iterable[tuple[str, VerdictResult]], sources: Sequence[str]) -> list[PrecisionRow]:
    """One row per source in `sources` order, from (source, result) pairs of one layer."""
    by_source: dict[str, list[VerdictResult]] = {s: [] for s in sources}
    for source, res in results:
        if source in by_source:
            by_source[source].append(res)
    rows = []
    for source in sources:
        judged = [r for r in by_source[source] if r.accepted_mv is not None]
        agreements = [r.agreement for r in judged if r.agreement is not None]
        rows.append(PrecisionRow(
            source=source, judged=len(judged), accepted_mv=sum(bool(r.accepted_mv) for r in judged),
            accepted_ds=sum(bool(r.accepted_ds) for r in judged),
            unsure=sum(r.n_unsure for r in by_source[source]),
            agreement=sum(agreements) / len(agreements) if agreements else None,
        ))
    return rows
