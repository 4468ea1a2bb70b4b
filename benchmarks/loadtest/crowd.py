"""A simulated crowd: annotators who answer from a unit's known truth with a set accuracy, plus spammers.

Framework-free (like aggregation.py), so `--no-load` can compare aggregation methods in-process and
the HTTP driver can use the same annotators against a live site.
"""
from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from units.results import aggregation

# The truth of the simulated mixture set: what a unit detects, and how often such units occur.
# Digit detectors dominate (as in the mixture-of-digits sanity check), with some part/texture
# units and units with no clear concept.
TRUTHS: list[tuple[tuple[str, str], float]] = (
    [((str(d), "object"), 0.06) for d in range(10)]
    + [(("stroke", "part"), 0.1), (("loop", "part"), 0.05), (("ink", "texture"), 0.1), (("", "none"), 0.15)]
)
CATEGORIES = ["scene", "object", "part", "texture", "color", "none"]
WORDS = [str(d) for d in range(10)] + ["stroke", "loop", "ink", "edge", "blob"]


def truth_for(index: int, *, seed: int = 0) -> tuple[str, str]:
    """The (word, category) a unit detects; deterministic in (index, seed) so reruns agree."""
    rng = random.Random(f"truth-{seed}-{index}")
    choices, weights = zip(*TRUTHS)
    return rng.choices(choices, weights=weights)[0]


@dataclass
class SimAnnotator:
    """Answers right with probability `accuracy`; a spammer answers at random whatever the unit shows."""

    name: str
    accuracy: float
    spammer: bool = False

    def answer(self, truth: tuple[str, str], rng: random.Random) -> tuple[str, str]:
        if self.spammer or rng.random() >= self.accuracy:
            category = rng.choice([c for c in CATEGORIES if self.spammer or c != truth[1]])
            word = "" if category == "none" else rng.choice(WORDS)
            return word, category
        return truth


def make_crowd(n: int, *, accuracy: float, spammer_share: float = 0.1, seed: int = 0,
               prefix: str = "sim") -> list[SimAnnotator]:
    """`n` annotators, about `spammer_share` of them spammers; honest ones spread +-0.1 around `accuracy`."""
    rng = random.Random(f"crowd-{seed}")
    n_spam = round(n * spammer_share)
    crowd = []
    for i in range(n):
        skill = min(1.0, max(0.0, accuracy + rng.uniform(-0.1, 0.1)))
        crowd.append(SimAnnotator(name=f"{prefix}{i + 1:03d}", accuracy=skill, spammer=i < n_spam))
    return crowd


def accuracy_against_truth(result: aggregation.AggregationResult,
                           truth: dict[Hashable, tuple[str, str]]) -> dict[str, float]:
    """Share of units whose published category and word, and whose voted category, match the truth."""
    units = [t for t in result.units if t in truth]
    if not units:
        return {"units": 0, "category": 0.0, "category_mv": 0.0, "word": 0.0}
    n = len(units)
    return {
        "units": n,
        "category": sum(result.units[t].category == truth[t][1] for t in units) / n,
        "category_mv": sum(result.units[t].category_mv == truth[t][1] for t in units) / n,
        "word": sum(result.units[t].crowd_word == truth[t][0] for t in units) / n,
    }


def simulate(*, n_units: int, redundancy: int, accuracy: float, n_annotators: int = 64,
             spammer_share: float = 0.1, seed: int = 0) -> dict[str, float]:
    """Aggregate a simulated crowd's answers in-process (no site) and score the published label, the
    vote and Crowd-Kit's full and one-coin Dawid-Skene against truth."""
    rng = random.Random(f"simulate-{seed}-{accuracy}")
    crowd = make_crowd(n_annotators, accuracy=accuracy, spammer_share=spammer_share, seed=seed)
    truth = {u: truth_for(u, seed=seed) for u in range(n_units)}
    answers: list[aggregation.Answer] = []
    for unit, true in truth.items():
        for annotator in rng.sample(crowd, redundancy):
            word, category = annotator.answer(true, rng)
            answers.append(aggregation.Answer(task=unit, worker=annotator.name, word=word, category=category))
    scores = accuracy_against_truth(aggregation.aggregate(answers), truth)
    scores["category_ds"] = crowdkit_accuracy(answers, truth, one_coin=False)
    scores["category_ds1"] = crowdkit_accuracy(answers, truth, one_coin=True)
    return scores


def crowdkit_accuracy(answers: list[aggregation.Answer], truth: dict[Hashable, tuple[str, str]], *,
                      one_coin: bool) -> float:
    """Accuracy of Crowd-Kit's one-coin or full Dawid-Skene on the categories: printed beside the published
    model; the full one fits 30 parameters per annotator from ~40 answers here and does worse than the vote
    (benchmarks/RESULTS.md)."""
    import warnings

    from crowdkit.aggregation import DawidSkene, OneCoinDawidSkene

    frame = aggregation.answer_frame(answers, "category")
    model = (OneCoinDawidSkene if one_coin else DawidSkene)(n_iter=aggregation.DS_ITERATIONS,
                                                            tol=aggregation.DS_TOLERANCE)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"crowdkit\.")
        labels = model.fit_predict(frame)
    units = [t for t in labels.index if t in truth]
    return sum(labels[t] == truth[t][1] for t in units) / max(1, len(units))


def simulate_table(*, n_units: int, redundancy: int, accuracies: Sequence[float], n_annotators: int,
                   spammer_share: float, seed: int = 0) -> list[dict[str, float]]:
    return [{"accuracy": acc, **simulate(n_units=n_units, redundancy=redundancy, accuracy=acc,
                                          n_annotators=n_annotators, spammer_share=spammer_share, seed=seed)}
            for acc in accuracies]
