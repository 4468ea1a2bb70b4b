"""Aggregate crowd answers per unit: the published label (reliability-weighted, `reliability.py`), the
majority vote beside it, agreement, precision and Krippendorff's alpha (Crowd-Kit).

Framework-free on purpose: services.py turns rows into `Answer`s and stores what comes back,
so the arithmetic here can be checked against hand-worked cases and against Crowd-Kit itself.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import reliability

if TYPE_CHECKING:
    import pandas as pd

# pandas and Crowd-Kit are imported where they are used, not here: Crowd-Kit pulls in scipy, nltk and
# scikit-learn (2.7 s, ~150 MB), and this module is imported by every web process (through the
# results app's signals), which never aggregates itself.

NONE = "none"  # the crowd's "no clear concept" category and the word answer it stands for

# Crowd-Kit's EM settings, for the verify answers' Dawid-Skene (verdicts.py) and the benchmark.
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


# What is published, named in runs and exports.
# AggregationRun.method holds at most 100 characters.
METHOD = "one-coin Dawid-Skene, Beta-regularised skills, category/word/pair views, calibrated"
METHOD_KEY = "one-coin-ds"
CATEGORIES = ("scene", "object", "part", "texture", "color", NONE)


@dataclass
class UnitResult:
    task: Hashable
    n_annotations: int
    crowd_word: str  # the published word ("" = no clear concept)
    agreement: float  # share of the plain vote's winning word answer
    category_mv: str
    category_agreement: float
    category: str = ""  # the published category
    category_probability: float | None = None  # calibrated P(category is right)
    word_probability: float | None = None  # calibrated P(word is right)
    precision: float | None = None


@dataclass
class AggregationResult:
    units: dict[Hashable, UnitResult] = field(default_factory=dict)
    skills: dict[Hashable, float] = field(default_factory=dict)  # P(a worker's answer is right)
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


def dawid_skene_skill(ds) -> dict[Hashable, float]:
    """A worker's skill in a fitted Crowd-Kit DawidSkene: prior-weighted probability of answering the true
    label (diagonal of the confusion)."""
    errors, priors = ds.errors_, ds.priors_
    skills: dict[Hashable, float] = {}
    for worker in errors.index.get_level_values(0).unique():
        matrix = errors.loc[worker]
        skills[worker] = float(
            sum(priors[k] * matrix.loc[k, k] for k in priors.index if k in matrix.index and k in matrix.columns)
        )
    return skills


def reliability_fit(answers: Sequence[Answer], **options) -> reliability.Fit:
    """The published model over a layer's answers; one skill per worker explains all of them.

    Three views of each answer: the category, the word, and the (word, category) pair. The word is
    published from the word's posterior times the pair's summed over categories, the category from the
    category's times the pair's summed over words. The pair keeps two unrelated wrong answers (a
    spammer's, a slip) from agreeing by chance; the single views keep a worker who names the right thing
    under a neighbouring category (part/object) from losing the word too. Wrong words and pairs follow
    how often each is answered ("no clear concept" is a common slip); wrong categories are uniform, as
    a category's frequency mostly reflects how common it truly is.

    The labels' probabilities come from models that describe the crowd's errors rather than pick the
    label (`label_probabilities`); `options` go to the label model only.
    """
    records: list[tuple[Hashable, Hashable, dict[str, Hashable]]] = [
        (a.task, a.worker, {"category": a.category, "word": a.word_answer, "answer": (a.word_answer, a.category)})
        for a in answers]
    fitted = reliability.fit(
        records, dimensions=["category", "word", "answer"], label_space={"category": CATEGORIES},
        uniform_errors=["category"], tie_key=_tie_key,
        publish={"category": [("category", None), ("answer", _category_of)],
                 "word": [("word", None), ("answer", _word_of)], "word_alone": [("word", None)]}, **options)
    label_probabilities(records, fitted)
    return fitted


def label_probabilities(records: Sequence[tuple[Hashable, Hashable, dict[str, Hashable]]],
                        fitted: reliability.Fit) -> None:
    """Set each published label's (raw) probability to what the models that describe the errors give it.

    The pair view that makes the labels accurate also makes them overconfident wherever workers
    systematically file the right thing under a neighbouring category (part as object): the pair they
    answer is rare, and rare wrong answers count as strong evidence. So the category's probability is read
    from a category-only model with a confusion matrix per worker, tied to one shared by the crowd
    (`reliability.OWN_CONFUSION` pseudo-answers per true category) and with a firmer skill prior
    (`reliability.PROBABILITY_PRIOR_RIGHT`), and the word's from the word view alone; `reliability.calibrated`
    then maps them to observed accuracy, the category's given how concentrated this crowd's confusion is
    (`fitted.concentration`, which this sets).
    """
    confusion = reliability.fit(records, dimensions=["category", "word"], label_space={"category": CATEGORIES},
                                confused=["category"], own_confusion=reliability.OWN_CONFUSION,
                                prior_right=reliability.PROBABILITY_PRIOR_RIGHT,
                                prior_wrong=reliability.PROBABILITY_PRIOR_WRONG,
                                publish={"category": [("category", None)]})
    fitted.concentration = confusion.concentration
    by_category = confusion.distributions["category"]
    for task, posterior in fitted.labels["category"].items():
        posterior.probability = by_category[task].get(posterior.label, 0.0)
    by_word = fitted.distributions.pop("word_alone")
    fitted.labels.pop("word_alone")
    for task, posterior in fitted.labels["word"].items():
        posterior.probability = by_word[task].get(posterior.label, 0.0)


def _category_of(pair: Hashable) -> Hashable:
    return pair[1] if isinstance(pair, tuple) else pair


def _word_of(pair: Hashable) -> Hashable:
    return pair[0] if isinstance(pair, tuple) else pair


def _tie_key(label) -> tuple:
    # Equal probabilities prefer a named word over "none", then the alphabetically first (as the vote).
    text = label[0] if isinstance(label, tuple) else label
    return (text == NONE, str(text), str(label))


def aggregate(answers: Sequence[Answer]) -> AggregationResult:
    """Per unit: the published word and category with their calibrated probabilities, the majority vote,
    agreement and precision; per worker: the skill of the published model; alpha over the layer."""
    from crowdkit.aggregation import MajorityVote

    result = AggregationResult()
    if not answers:
        return result
    by_task: dict[Hashable, list[Answer]] = {}
    for a in answers:
        by_task.setdefault(a.task, []).append(a)

    categories = answer_frame(answers, "category")
    mv = MajorityVote().fit(categories)
    labels, probas = mv.labels_, mv.probas_
    assert labels is not None and probas is not None
    fitted = reliability_fit(answers)
    layer = fitted.layer()
    for task, group in by_task.items():
        word, agreement = winning_word(group)
        category = str(labels[task])
        published_category, published_word = fitted.labels["category"][task], fitted.labels["word"][task]
        result.units[task] = UnitResult(
            task=task,
            n_annotations=len(group),
            crowd_word="" if published_word.label == NONE else str(published_word.label),
            agreement=agreement,
            category_mv=category,
            category_agreement=float(probas.loc[task, category]),
            category=str(published_category.label),
            category_probability=round(reliability.calibrated("category", published_category.probability,
                                                              len(group), layer), 4),
            word_probability=round(reliability.calibrated("word", published_word.probability, len(group), layer), 4),
            precision=unit_precision(group),
        )
    result.skills = {w: round(s, 6) for w, s in fitted.skills.items()}
    result.alpha_category = krippendorff_alpha(list(categories.itertuples(index=False, name=None)))
    result.alpha_word = krippendorff_alpha(list(answer_frame(answers, "word").itertuples(index=False, name=None)))
    return result
