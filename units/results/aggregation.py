"""Aggregate crowd answers per unit with Crowd-Kit (majority vote, Dawid-Skene) plus agreement and precision.

Framework-free on purpose: services.py turns rows into `Answer`s and stores what comes back,
so the arithmetic here can be checked against hand-worked cases and against Crowd-Kit itself.
"""
from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd
    from crowdkit.aggregation import DawidSkene

# pandas and Crowd-Kit are imported where they are used, not here: Crowd-Kit pulls in scipy, nltk and
# scikit-learn (2.7 s, ~150 MB), and this module is imported by every web process (through the
# results app's signals), which never aggregates itself.

NONE = "none"  # the crowd's "no clear concept" category and the word answer it stands for

DS_ITERATIONS = 100
DS_TOLERANCE = 1e-5


@dataclass(frozen=True)
class Answer:
    """One annotation, reduced to what aggregation needs (word already normalised/canonical)."""

    task: Hashable  # the unit
    worker: Hashable
    word: str
    category: str
    shown: int = 0  # top images shown in the HIT
    non_fitting: int = 0  # of those, marked as not fitting

    @property
    def word_answer(self) -> str:
        """The answer compared for agreement: the word, or "none" when no concept was named."""
        return NONE if self.category == NONE or not self.word else self.word


@dataclass
class UnitResult:
    task: Hashable
    n_annotations: int
    crowd_word: str
    agreement: float
    category_mv: str
    category_agreement: float
    category_ds: str = ""
    category_ds_probability: float | None = None
    precision: float | None = None


@dataclass
class AggregationResult:
    units: dict[Hashable, UnitResult] = field(default_factory=dict)
    ds_skills: dict[Hashable, float] = field(default_factory=dict)
    alpha_category: float | None = None
    alpha_word: float | None = None


def answer_frame(answers: Sequence[Answer], label: str) -> pd.DataFrame:
    import pandas as pd

    rows = [
        {"task": a.task, "worker": a.worker, "label": a.category if label == "category" else a.word_answer}
        for a in answers
    ]
    return pd.DataFrame(rows, columns=["task", "worker", "label"])


def winning_word(answers: Iterable[Answer]) -> tuple[str, float]:
    """Vote over normalised words; returns (word or "", share of the winning answer).

    "No clear concept" answers vote for "none". Ties prefer a named word over "none", then the
    alphabetically first, so reruns give the same label.
    """
    votes = Counter(a.word_answer for a in answers)
    total = sum(votes.values())
    if not total:
        return "", 0.0
    best = min(votes.items(), key=lambda kv: (-kv[1], kv[0] == NONE, kv[0]))
    word = "" if best[0] == NONE else best[0]
    return word, best[1] / total


def unit_precision(answers: Iterable[Answer]) -> float | None:
    """ICLR 2015 precision: per annotation the share of shown images left as fitting, averaged."""
    shares = [(a.shown - a.non_fitting) / a.shown for a in answers if a.shown > 0]
    return sum(shares) / len(shares) if shares else None


def krippendorff_alpha(records: Sequence[tuple[Hashable, Hashable, Hashable]]) -> float | None:
    """Krippendorff's alpha (nominal) over (task, worker, label) triples; None when undefined.

    Items rated once carry no pairable values and are ignored (as Krippendorff defines it).
    """
    import pandas as pd
    from crowdkit.metrics.data import alpha_krippendorff

    frame = pd.DataFrame(list(records), columns=["task", "worker", "label"])
    if frame.empty or frame.groupby("task").size().max() < 2:
        return None
    try:
        return alpha_krippendorff(frame)
    except (ValueError, ZeroDivisionError):
        return None


def dawid_skene_skill(ds: DawidSkene) -> dict[Hashable, float]:
    """A worker's skill: prior-weighted probability of answering the true category (diagonal of the confusion)."""
    errors, priors = ds.errors_, ds.priors_
    skills: dict[Hashable, float] = {}
    for worker in errors.index.get_level_values(0).unique():
        matrix = errors.loc[worker]
        skills[worker] = float(
            sum(priors[k] * matrix.loc[k, k] for k in priors.index if k in matrix.index and k in matrix.columns)
        )
    return skills


def aggregate(answers: Sequence[Answer], *, ds_iterations: int = DS_ITERATIONS,
              ds_tol: float = DS_TOLERANCE) -> AggregationResult:
    """Per unit: word vote, majority-vote and Dawid-Skene category, agreement, precision; per worker: DS skill."""
    from crowdkit.aggregation import DawidSkene, MajorityVote

    result = AggregationResult()
    if not answers:
        return result
    by_task: dict[Hashable, list[Answer]] = {}
    for a in answers:
        by_task.setdefault(a.task, []).append(a)

    categories = answer_frame(answers, "category")
    mv = MajorityVote().fit(categories)
    probas = mv.probas_
    for task, group in by_task.items():
        word, agreement = winning_word(group)
        category = str(mv.labels_[task])
        result.units[task] = UnitResult(
            task=task,
            n_annotations=len(group),
            crowd_word=word,
            agreement=agreement,
            category_mv=category,
            category_agreement=float(probas.loc[task, category]),
            precision=unit_precision(group),
        )

    if categories["label"].nunique() > 1:
        with warnings.catch_warnings():
            # Crowd-Kit 1.4 uses pandas keywords that pandas 3 deprecates; the results are unaffected.
            warnings.filterwarnings("ignore", module=r"crowdkit\.")
            ds = DawidSkene(n_iter=ds_iterations, tol=ds_tol).fit(categories)
        for task, label in ds.labels_.items():
            result.units[task].category_ds = str(label)
            result.units[task].category_ds_probability = float(ds.probas_.loc[task, label])
        result.ds_skills = dawid_skene_skill(ds)
    else:  # one category everywhere: Dawid-Skene has nothing to weigh; it agrees with the vote
        for unit in result.units.values():
            unit.category_ds, unit.category_ds_probability = unit.category_mv, 1.0
        result.ds_skills = {a.worker: 1.0 for a in answers}

    result.alpha_category = krippendorff_alpha(list(categories.itertuples(index=False, name=None)))
    result.alpha_word = krippendorff_alpha(list(answer_frame(answers, "word").itertuples(index=False, name=None)))
    return result
