"""A simulated crowd: annotators who answer from a unit's known truth with a set accuracy, plus spammers.

Framework-free (like aggregation.py), so `--no-load` can compare aggregation methods in-process and
the HTTP driver can use the same annotators against a live site.
"""
from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from units.crowd.quality_rule import CheckRecord, QualityRule
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


# --- spammers and the project's quality rule ----------------------------------------------------------

SENTINELS_PER_HIT = 2


def sentinels_caught(annotator: SimAnnotator, rng: random.Random, shown: int = SENTINELS_PER_HIT) -> int:
    """How many of a HIT's sentinels the annotator marks as not fitting: an honest one sees each with their
    accuracy, a spammer ticks boxes at random (half of them)."""
    p = 0.5 if annotator.spammer else annotator.accuracy
    return sum(rng.random() < p for _ in range(shown))


def collect_with_rule(*, crowd: list[SimAnnotator], truth: dict[int, tuple[str, str]], redundancy: int,
                      rule: QualityRule | None, rng: random.Random) -> tuple[list[aggregation.Answer], dict]:
    """Answers as a crowd hands them in, one at a time to HITs still short of answers, with the project's
    quality rule applied after each (units/crowd/quality.py's `QualityRule`): a blocked worker gets no more
    HITs and their answers, still waiting for review, are rejected; their HITs are offered again."""
    kept: dict[int, list[tuple[str, aggregation.Answer]]] = {u: [] for u in truth}
    seen: dict[int, set[str]] = {u: set() for u in truth}
    records: dict[str, list[int]] = {a.name: [0, 0, 0] for a in crowd}  # answers, checks, passed
    blocked: set[str] = set()
    by_name = {a.name: a for a in crowd}
    rounds = 0
    while True:
        short = [u for u in truth if len(kept[u]) < redundancy]
        if not short or rounds > 50 * redundancy * len(truth):
            break
        rounds += 1
        unit = rng.choice(short)
        eligible = [a for a in crowd if a.name not in blocked and a.name not in seen[unit]]
        if not eligible:
            break
        annotator = rng.choice(eligible)
        word, category = annotator.answer(truth[unit], rng)
        seen[unit].add(annotator.name)
        kept[unit].append((annotator.name, aggregation.Answer(task=unit, worker=annotator.name, word=word,
                                                              category=category)))
        record = records[annotator.name]
        record[0] += 1
        record[1] += SENTINELS_PER_HIT
        record[2] += sentinels_caught(annotator, rng)
        if rule is not None and rule.blocks(CheckRecord(*record)):
            blocked.add(annotator.name)
            for u in truth:
                kept[u] = [(name, a) for name, a in kept[u] if name != annotator.name]
    answers = [a for pairs in kept.values() for _, a in pairs]
    stats = {"blocked_spammers": sum(by_name[n].spammer for n in blocked),
             "blocked_honest": sum(not by_name[n].spammer for n in blocked),
             "spam_answers": sum(by_name[a.worker].spammer for a in answers) / max(1, len(answers))}
    return answers, stats


DEFAULT_RULE = QualityRule(min_pass_rate=0.6, min_answers=10)


def spammer_sweep(*, n_units: int, redundancy: int, accuracy: float, n_annotators: int,
                  shares: Sequence[float] = (0.0, 0.1, 0.3), rule: QualityRule = DEFAULT_RULE,
                  seed: int = 0) -> list[dict]:
    """Aggregated accuracy against truth for each share of spammers, without and with the quality rule."""
    truth = {u: truth_for(u, seed=seed) for u in range(n_units)}
    rows = []
    for share in shares:
        crowd = make_crowd(n_annotators, accuracy=accuracy, spammer_share=share, seed=seed)
        for applied in (None, rule):
            rng = random.Random(f"sweep-{seed}-{share}-{applied is not None}")
            answers, stats = collect_with_rule(crowd=crowd, truth=truth, redundancy=redundancy, rule=applied,
                                               rng=rng)
            scores = accuracy_against_truth(aggregation.aggregate(answers), truth)
            rows.append({"spammers": share, "rule": applied is not None, **scores, **stats})
    return rows
