"""How well each aggregation method recovers the truth from a simulated crowd, without a server.

The crowd mixes the worker kinds of the truth-inference literature (Zheng et al., VLDB 2017): one-coin
workers, workers who confuse pairs of categories (part/object, texture/color), uniform and constant
spammers, and adversaries. For 1, 3, 5, 7 answers per unit and 0-50% spammers it prints, per method,
the accuracy of the category (and of the word where the method reads words) with a Wilson 95% interval
over all units of all seeds, the Spearman correlation of estimated against true worker skill, a
reliability table of the published probabilities, the issue table on the load benchmark's own crowd
(`benchmarks/loadtest/crowd.py`) and the time to aggregate a 512-unit layer with 2,560 answers.

The published probabilities are calibrated here: `--fit-calibration` fits `reliability.CALIBRATION` (isotonic
tables on both crowds), `reliability.LAYER_SHIFT` (the log-odds moved by how concentrated the layer's confusion is,
how reliable its crowd is and how many answers a unit has, since one table leaves the load crowd underconfident and
this crowd overconfident) and `reliability.LONE_ANSWER_PROBABILITY` on `CALIBRATION_SEEDS`, never on the seeds the
tables are checked on.

    python -m benchmarks.aggregation_bench                              # default: a few minutes on 2 cores
    python -m benchmarks.aggregation_bench --quick                      # seconds: one seed, fewer cells
    python -m benchmarks.aggregation_bench --calibration --seeds 0 1    # the reliability tables only
    python -m benchmarks.aggregation_bench --fit-calibration            # print the tables and shift to paste
"""
from __future__ import annotations

import argparse
import math
import random
import statistics
import time
import warnings
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from units.results import aggregation, reliability
from units.results.aggregation import NONE, Answer

CATEGORIES = list(aggregation.CATEGORIES)
# Truth: how often each category occurs and the words a unit of it may detect.
CATEGORY_PRIOR = {"object": 0.35, "part": 0.15, "texture": 0.15, "color": 0.1, "scene": 0.1, NONE: 0.15}
WORDS = {
    "object": ["dog", "car", "person", "tree", "chair", "bird"],
    "part": ["wheel", "leg", "eye", "window", "head"],
    "texture": ["striped", "dotted", "wood", "grass", "brick"],
    "color": ["red", "blue", "green", "yellow"],
    "scene": ["kitchen", "street", "beach", "forest"],
    NONE: [""],
}
CONFUSED = {"part": "object", "object": "part", "texture": "color", "color": "texture"}
CONFUSION_RATE = 0.5  # how often a pair-confuser names the paired category when it applies
CONFUSABLE = sum(p for c, p in CATEGORY_PRIOR.items() if c in CONFUSED)  # P(the truth has a neighbour)


def draw_truth(rng: random.Random) -> tuple[str, str]:
    category = rng.choices(list(CATEGORY_PRIOR), weights=list(CATEGORY_PRIOR.values()))[0]
    return rng.choice(WORDS[category]), category


def random_answer(rng: random.Random, exclude: str | None = None) -> tuple[str, str]:
    category = rng.choice([c for c in CATEGORIES if c != exclude])
    return rng.choice(WORDS[category]), category


@dataclass
class Worker:
    """kind: one-coin, confuser, uniform, constant or adversary; skill: P(right) where the kind has one."""

    name: str
    kind: str
    skill: float
    constant: tuple[str, str] = ("dog", "object")

    def answer(self, truth: tuple[str, str], rng: random.Random) -> tuple[str, str]:
        if self.kind == "uniform":
            return random_answer(rng)
        if self.kind == "constant":
            return self.constant
        if self.kind == "confuser" and truth[1] in CONFUSED and rng.random() < CONFUSION_RATE:
            return truth[0], CONFUSED[truth[1]]  # the right thing, filed under the neighbour category
        if rng.random() < self.skill:
            return truth
        return random_answer(rng, exclude=truth[1])

    def true_skill(self) -> float:
        """P(a part of an answer is right), the mean over the category and the word as the published skill
        counts it, over the truth distribution: what an estimated skill should rank."""
        return (self.p_category() + self.p_word()) / 2

    def p_category(self) -> float:
        if self.kind == "uniform":
            return 1 / len(CATEGORIES)
        if self.kind == "constant":
            return CATEGORY_PRIOR[self.constant[1]]
        if self.kind == "confuser":
            return self.skill * (1 - CONFUSION_RATE * CONFUSABLE)
        return self.skill

    def p_word(self) -> float:
        if self.kind == "uniform":  # a random category, then a random word of it
            return sum(p / len(CATEGORIES) / len(WORDS[c]) for c, p in CATEGORY_PRIOR.items())
        if self.kind == "constant":
            return CATEGORY_PRIOR[self.constant[1]] / len(WORDS[self.constant[1]])
        if self.kind == "confuser":
            return CONFUSION_RATE * CONFUSABLE + (1 - CONFUSION_RATE * CONFUSABLE) * self.skill
        return self.skill  # a wrong answer's category is never the true one, so neither is its word


def make_workers(n: int, spam_share: float, rng: random.Random) -> list[Worker]:
    """Spammers: half uniform, a quarter constant, a quarter adversaries; the honest 70% one-coin,
    30% pair-confusers, skills uniform in 0.55-0.95."""
    n_spam = round(n * spam_share)
    workers = []
    for i in range(n):
        name = f"w{i:03d}"
        if i < n_spam:
            kind = ("uniform", "uniform", "constant", "adversary")[i % 4]
            skill = rng.uniform(0.05, 0.2) if kind == "adversary" else 0.0
            constant = random_answer(rng)
            workers.append(Worker(name, kind, skill, constant))
        else:
            kind = "confuser" if rng.random() < 0.3 else "one-coin"
            workers.append(Worker(name, kind, rng.uniform(0.55, 0.95)))
    return workers


def simulate(*, n_units: int, redundancy: int, spam_share: float, seed: int, n_workers: int = 64
             ) -> tuple[list[Answer], dict[Hashable, tuple[str, str]], list[Worker]]:
    rng = random.Random(f"aggregation-bench-{seed}-{redundancy}-{spam_share}")
    workers = make_workers(n_workers, spam_share, rng)
    truth: dict[Hashable, tuple[str, str]] = {u: draw_truth(rng) for u in range(n_units)}
    answers = []
    for unit, true in truth.items():
        for worker in rng.sample(workers, redundancy):
            word, category = worker.answer(true, rng)
            answers.append(Answer(task=unit, worker=worker.name, word=word, category=category))
    return answers, truth, workers


# --- methods ---------------------------------------------------------------------------------

@dataclass
class MethodResult:
    category: dict[Hashable, str]
    word: dict[Hashable, str] | None = None
    skills: dict[Hashable, float] | None = None
    probability: dict[Hashable, float] | None = None  # of the published category
    word_probability: dict[Hashable, float] | None = None


def _crowdkit(model_factory: Callable[[], object], *, words: bool = False,
              skills: Callable[[object], dict] | None = None) -> Callable[[list[Answer]], MethodResult]:
    def run(answers: list[Answer]) -> MethodResult:
        frame = aggregation.answer_frame(answers, "category")
        model = model_factory()
        labels = _fit_labels(model, frame)
        result = MethodResult(category={t: str(v) for t, v in labels.items()})
        if skills is not None:
            result.skills = skills(model)
        if words:
            word_labels = _fit_labels(model_factory(), aggregation.answer_frame(answers, "word"))
            result.word = {t: "" if v == NONE else str(v) for t, v in word_labels.items()}
        return result
    return run


def _fit_labels(model, frame):
    from crowdkit.aggregation import MajorityVote

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        model.fit(frame)
    if getattr(model, "labels_", None) is None:
        # Crowd-Kit 1.4.2's Wawa and ZeroBasedSkill fail in predict() under scikit-learn >= 1.6
        # (check_is_fitted asks for sklearn tags); their prediction is the vote weighted by the fitted skills.
        return MajorityVote().fit(frame, skills=model.skills_).labels_
    return model.labels_


def _series_skills(model) -> dict:
    return {w: float(v) for w, v in model.skills_.items()}


def _ds_skills(model) -> dict:
    return aggregation.dawid_skene_skill(model)


def _ours(answers: list[Answer]) -> MethodResult:
    fitted = aggregation.reliability_fit(answers)
    cat, word = fitted.labels["category"], fitted.labels["word"]
    layer = fitted.layer()
    return MethodResult(
        category={t: str(p.label) for t, p in cat.items()},
        word={t: "" if p.label == NONE else str(p.label) for t, p in word.items()},
        skills=fitted.skills,
        probability={t: reliability.calibrated("category", p.probability, p.n_answers, layer)
                     for t, p in cat.items()},
        word_probability={t: reliability.calibrated("word", p.probability, p.n_answers, layer)
                          for t, p in word.items()},
    )


def methods(quick: bool) -> dict[str, Callable[[list[Answer]], MethodResult]]:
    from crowdkit.aggregation import GLAD, MACE, DawidSkene, MajorityVote, OneCoinDawidSkene, Wawa, ZeroBasedSkill

    it, tol = aggregation.DS_ITERATIONS, aggregation.DS_TOLERANCE
    out: dict[str, Callable[[list[Answer]], MethodResult]] = {
        "MV": _crowdkit(MajorityVote, words=True),
        "Wawa": _crowdkit(Wawa, words=True, skills=_series_skills),
        "ZeroBasedSkill": _crowdkit(ZeroBasedSkill, skills=_series_skills),
        "OneCoinDS": _crowdkit(lambda: OneCoinDawidSkene(n_iter=it, tol=tol), words=True, skills=_series_skills),
        "DS": _crowdkit(lambda: DawidSkene(n_iter=it, tol=tol), skills=_ds_skills),
        "GLAD": _crowdkit(lambda: GLAD(n_iter=30, silent=True)),
    }
    if not quick:
        out["MACE"] = _crowdkit(lambda: MACE(n_iter=10))
    out["ours"] = _ours
    return out


# --- statistics ------------------------------------------------------------------------------

def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 0.0
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import spearmanr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one answer per unit: every skill equal, the rank correlation undefined
        value = spearmanr(a, b).statistic
    return float(value) if value == value else float("nan")


def reliability_table(pairs: list[tuple[float, bool]], edges: Sequence[float]) -> list[tuple[str, int, float, float]]:
    """(bin, units, mean predicted, observed accuracy) per probability bin."""
    rows = []
    for lo, hi in zip(edges, edges[1:]):
        inside = [(p, ok) for p, ok in pairs if lo <= p < hi or (hi == edges[-1] and p == hi)]
        if inside:
            rows.append((f"{lo:.2f}-{hi:.2f}", len(inside), statistics.fmean(p for p, _ in inside),
                         sum(ok for _, ok in inside) / len(inside)))
    return rows


BINS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)


# --- the runs ----------------------------------------------------------------------------------

CHEAP = ("MV", "Wawa", "DS", "ours")
ORACLE = "oracle (truth known)"


def empirical_skills(answers: list[Answer], truth: dict[Hashable, tuple[str, str]]) -> dict[Hashable, float]:
    """Per worker, the share of their answers' categories and words that are right, scored against the
    known truth: what no estimator without the truth can beat in ranking the true skills, as it sees
    the same finite sample of each worker's answers."""
    scores: dict[Hashable, list[float]] = {}
    for a in answers:
        word, category = truth[a.task]
        scores.setdefault(a.worker, []).append(((a.category == category) + (a.word == word)) / 2)
    return {w: statistics.fmean(v) for w, v in scores.items()}


def runs_in_cell(name: str, redundancy: int) -> bool:
    """Bounds the default run to minutes: what a cell would add nothing with is skipped."""
    if name == "MACE":
        return redundancy == 5
    return redundancy > 1 or name in CHEAP


def grid(args) -> None:
    table = methods(args.quick)
    skill_rows = []
    print(f"## accuracy against truth ({args.units} units x {len(args.seeds)} seeds, 64 workers; "
          "category [Wilson 95%]; word where the method reads words)\n")
    print("With one answer per unit every method but DS returns that answer: the iterative ones are left out "
          "there (-); MACE (~10 s per cell) runs at 5 answers only.\n")
    print("| answers | spammers | " + " | ".join(table) + " |")
    print("|---|---|" + "---|" * len(table))
    timings: dict[str, float] = {name: 0.0 for name in table}
    for redundancy in args.redundancy:
        for spam in args.spam:
            right: dict[str, list[int]] = {name: [0, 0, 0] for name in table}  # category, word, units
            spear: dict[str, list[float]] = {name: [] for name in [*table, ORACLE]}
            for seed in args.seeds:
                answers, truth, workers = simulate(n_units=args.units, redundancy=redundancy, spam_share=spam,
                                                   seed=seed)
                oracle = empirical_skills(answers, truth)
                spear[ORACLE].append(spearman([oracle[w.name] for w in workers if w.name in oracle],
                                              [w.true_skill() for w in workers if w.name in oracle]))
                for name, run in table.items():
                    if not runs_in_cell(name, redundancy):
                        continue
                    started = time.perf_counter()
                    res = run(answers)
                    timings[name] += time.perf_counter() - started
                    right[name][0] += sum(res.category.get(u) == t[1] for u, t in truth.items())
                    right[name][1] += sum((res.word or {}).get(u) == t[0] for u, t in truth.items())
                    right[name][2] += len(truth)
                    if res.skills:
                        names = [w.name for w in workers if w.name in res.skills]
                        spear[name].append(spearman([res.skills[n] for n in names],
                                                    [w.true_skill() for w in workers if w.name in res.skills]))
            cells = []
            for name in table:
                c, w, n = right[name]
                if not n:
                    cells.append("-")
                    continue
                lo, hi = wilson(c, n)
                cell = f"{c / n:.3f} [{lo:.3f}, {hi:.3f}]"
                if name in ("MV", "Wawa", "OneCoinDS", "ours"):
                    cell += f"; {w / n:.3f}"
                cells.append(cell)
            print(f"| {redundancy} | {spam:.0%} | " + " | ".join(cells) + " |")
            skill_rows.append((redundancy, spam, {n: statistics.fmean(v) for n, v in spear.items() if v}))
    print("\n## worker-skill recovery: Spearman of estimated against true skill (mean over seeds)\n")
    print(f"{ORACLE}: each worker's accuracy against the known truth, the most that their answers can tell.\n")
    names = [n for n in [*table, ORACLE] if any(n in values for _, _, values in skill_rows)]
    print("| answers | spammers | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for redundancy, spam, values in skill_rows:
        print(f"| {redundancy} | {spam:.0%} | " + " | ".join(f"{values.get(n, float('nan')):.3f}" for n in names)
              + " |")
    print("\nfit time per method, all cells: " + ", ".join(f"{n} {t:.1f} s" for n, t in timings.items()))


def load_calibration(args) -> None:
    """Reliability tables of the published probabilities on both crowds, held-out seeds (the tables were
    fitted on `CALIBRATION_SEEDS`): the load benchmark's crowd (60/75/90% honest, 0-50% spammers) and this one's
    (pair-confusers, constant spammers, adversaries; 0/30/50% spammers), 1/3/5/7 answers per unit."""
    units = CALIBRATION_UNITS
    fitted_on = f"{CALIBRATION_SEEDS[0]}-{CALIBRATION_SEEDS[-1]}"
    for kind, name in (("load", "the load benchmark's crowd"), ("grid", "this benchmark's crowd")):
        print(f"\n## calibration on {name} (seeds {', '.join(map(str, args.seeds))}, {units} units per cell; "
              f"tables fitted on both crowds, seeds {fitted_on})\n")
        print("| table | bin | units | mean predicted | observed |")
        print("|---|---|---|---|---|")
        for key, raw in sorted(calibration_samples(args.seeds, units=units, crowd_kind=kind).items()):
            dimension, lone = key.split("/")[0], key.endswith("/1")
            pairs = [(reliability.calibrated(dimension, p, n, layer), ok) for p, ok, n, layer in raw]
            label = f"{dimension}, {'1 answer' if lone else '3-7 answers'}"
            for bin_name, n, predicted, observed in reliability_table(pairs, BINS):
                flag = " **off by > 5 points**" if n >= 50 and abs(predicted - observed) > 0.05 else ""
                print(f"| {label} | {bin_name} | {n} | {predicted:.3f} | {observed:.3f}{flag} |")


def issue_table(args) -> None:
    """The load benchmark's own crowd (`manage.py loadtest --no-load --hits 300 --assignments 5`)."""
    from crowdkit.aggregation import DawidSkene, MajorityVote, OneCoinDawidSkene

    from benchmarks.loadtest import crowd

    print("\n## the load benchmark's crowd: 300 HITs x 5 assignments, 64 annotators (mean over seeds "
          f"{', '.join(map(str, args.seeds))})\n")
    print("| honest accuracy | spammers | category MV | DS | one-coin DS | ours | word vote | ours (word) |")
    print("|---|---|---|---|---|---|---|---|")
    it, tol = aggregation.DS_ITERATIONS, aggregation.DS_TOLERANCE
    rows = ((0.6, 0.3),) if args.quick else ((0.6, 0.0), (0.75, 0.0), (0.6, 0.3), (0.75, 0.3), (0.9, 0.3))
    for accuracy, spam in rows:
        scores: dict[str, list[float]] = {k: [] for k in ("mv", "ds", "ds1", "ours", "vote", "ours_word")}
        for seed in args.seeds:
            answers, truth = loadtest_answers(crowd, accuracy=accuracy, spam=spam, seed=seed)
            frame = aggregation.answer_frame(answers, "category")
            for key, model in (("mv", MajorityVote()), ("ds", DawidSkene(n_iter=it, tol=tol)),
                               ("ds1", OneCoinDawidSkene(n_iter=it, tol=tol))):
                labels = _fit_labels(model, frame)
                scores[key].append(sum(labels[u] == t[1] for u, t in truth.items()) / len(truth))
            result = aggregation.aggregate(answers)
            by_task: dict[Hashable, list[Answer]] = {}
            for a in answers:
                by_task.setdefault(a.task, []).append(a)
            scores["vote"].append(sum(aggregation.winning_word(by_task[u])[0] == t[0] for u, t in truth.items())
                                  / len(truth))
            scores["ours"].append(sum(result.units[u].category == t[1] for u, t in truth.items()) / len(truth))
            scores["ours_word"].append(sum(result.units[u].crowd_word == t[0] for u, t in truth.items())
                                       / len(truth))
        print(f"| {accuracy:.0%} | {spam:.0%} | " + " | ".join(f"{statistics.fmean(v):.1%}" for v in scores.values())
              + " |")


def loadtest_answers(crowd, *, accuracy: float, spam: float, seed: int, n_units: int = 300,
                     redundancy: int = 5) -> tuple[list[Answer], dict[Hashable, tuple[str, str]]]:
    """The answers `crowd.simulate` draws (same seeds), kept for every method to read."""
    rng = random.Random(f"simulate-{seed}-{accuracy}")
    annotators = crowd.make_crowd(64, accuracy=accuracy, spammer_share=spam, seed=seed)
    truth: dict[Hashable, tuple[str, str]] = {u: crowd.truth_for(u, seed=seed) for u in range(n_units)}
    answers = []
    for unit, true in truth.items():
        for annotator in rng.sample(annotators, redundancy):
            word, category = annotator.answer(true, rng)
            answers.append(Answer(task=unit, worker=annotator.name, word=word, category=category))
    return answers, truth


LOAD_ACCURACIES = (0.6, 0.75, 0.9)
# The raw probability, whether the label was right, the unit's answer count, the layer's statistics.
Sample = tuple[float, bool, int, reliability.LayerStatistics]
LOAD_SPAM = (0.0, 0.1, 0.3, 0.5)


def sample_key(dimension: str, n_answers: int) -> str:
    """Lone answers are scored apart: their probability is a constant (`reliability.LONE_ANSWER_PROBABILITY`)."""
    return f"{dimension}/1" if reliability.is_lone(n_answers) else dimension


def calibration_samples(seeds: Sequence[int], units: int = 300, crowd_kind: str = "load",
                        redundancies: Sequence[int] = (1, 3, 5, 7)) -> dict[str, list[Sample]]:
    """`Sample`s of the published labels by key: "category" and "word" for units with two or more answers,
    "category/1" and "word/1" for lone answers, on the load benchmark's crowd ("load":
    honest accuracy 60/75/90%, 0-50% spammers) or on this benchmark's ("grid": pair-confusers, constant
    spammers, adversaries; 0/30/50% spammers), with `redundancies` answers per unit."""
    from benchmarks.loadtest import crowd

    pairs: dict[str, list[Sample]] = {}

    def add(answers: list[Answer], truth: dict) -> None:
        fitted = aggregation.reliability_fit(answers)
        layer = fitted.layer()
        for u, (word, category) in truth.items():
            c, w = fitted.labels["category"][u], fitted.labels["word"][u]
            pairs.setdefault(sample_key("category", c.n_answers), []).append(
                (c.probability, c.label == category, c.n_answers, layer))
            pairs.setdefault(sample_key("word", w.n_answers), []).append(
                (w.probability, ("" if w.label == NONE else w.label) == word, w.n_answers, layer))

    for seed in seeds:
        for redundancy in redundancies:
            if crowd_kind == "grid":
                for spam in (0.0, 0.3, 0.5):
                    answers, truth, _ = simulate(n_units=units, redundancy=redundancy, spam_share=spam, seed=seed)
                    add(answers, truth)
                continue
            for accuracy in LOAD_ACCURACIES:
                for spam in LOAD_SPAM:
                    answers, truth = loadtest_answers(crowd, accuracy=accuracy, spam=spam, seed=seed,
                                                      n_units=units, redundancy=redundancy)
                    add(answers, truth)
    return pairs


# Seeds the tables, shifts and lone-answer rates are fitted on (the tests and the reliability tables use 0-24).
# Eighteen: the shift is fitted from one set of statistics per layer, and fewer seeds left the held-out bins
# 5-10 points off on one crowd or the other (benchmarks/RESULTS.md).
CALIBRATION_SEEDS = tuple(range(100, 118))
# Units per simulated layer (64 workers) where the tables are fitted and checked: the probabilities depend on
# how many answers each worker gave, so smaller and larger layers read them through the same tables with a
# larger error (benchmarks/RESULTS.md).
CALIBRATION_UNITS = 300


def fit_calibration(seeds: Sequence[int]) -> None:
    """Print `reliability.CALIBRATION`, `LAYER_SHIFT` and `LONE_ANSWER_PROBABILITY` fitted on both crowds, each
    crowd weighing as much in all: per dimension, isotonic regressions of right/wrong on the raw probability's
    log-odds over units with two or more answers (one on layers whose concentration is below
    `reliability.TABLE_SPLIT`, one on the others; the fitted tables replace `reliability.CALIBRATION`'s in this
    process), then a logistic regression of right/wrong on the tables'
    log-odds times s plus a + b * concentration + c * mean skill + d * answers; for lone answers, the share
    that was right."""
    import textwrap

    import numpy as np
    from sklearn.isotonic import IsotonicRegression

    samples = {kind: calibration_samples(seeds, units=CALIBRATION_UNITS, crowd_kind=kind) for kind in ("load", "grid")}
    tables, shifts, lone = [], {}, {}
    for dimension in ("category", "word"):
        parts = [samples[kind][dimension] for kind in ("load", "grid")]
        pairs = [pair for part in parts for pair in part]
        x = np.array([reliability.logit(p) for p, *_ in pairs])
        y = np.array([float(ok) for _, ok, *_ in pairs])
        weight = np.concatenate([np.full(len(part), 1.0 / len(part)) for part in parts])
        concentration = np.array([layer.concentration for *_, layer in pairs])
        split = concentration < reliability.TABLE_SPLIT[dimension]
        for name, part in ((dimension, split), (f"{dimension}/concentrated", ~split)):
            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                x[part], y[part], sample_weight=weight[part])
            # Knots at the 2% quantiles of the log-odds: most posteriors sit just below 1, where knots spaced
            # evenly in probability would leave one straight line over most of the units.
            knots = np.unique(np.round(np.quantile(x[part], np.linspace(0, 1, 51)), 3))
            ys = np.round(iso.predict(knots), 4)
            reliability.CALIBRATION[name] = (tuple(map(float, knots)), tuple(map(float, ys)))
            lines = [f'    "{name}": (']
            for values in (knots, ys):
                text = "(" + ", ".join(str(float(v)) for v in values) + "),"
                lines.append(textwrap.fill(text, width=116, initial_indent=" " * 8, subsequent_indent=" " * 9))
            tables.append("\n".join([*lines, "    ),"]))
        # The tables as `reliability.calibrated` reads them (interpolated, blended near the split), as log-odds.
        offset = np.array([reliability.logit(reliability.table_probability(dimension, p, layer.concentration),
                                             reliability.SHIFT_LOGIT_LIMIT) for p, _, _, layer in pairs])
        features = np.array([reliability.shift_features(n, layer) for _, _, n, layer in pairs])
        shifts[dimension] = _fit_shift(offset, features, y, weight)
        lone_parts = [samples[kind][f"{dimension}/1"] for kind in ("load", "grid")]
        lone[dimension] = round(statistics.fmean(statistics.fmean(float(ok) for _, ok, *_ in part)
                                                 for part in lone_parts), 4)
    print("CALIBRATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {")
    print("\n".join(tables))
    print("}\n\nLAYER_SHIFT: dict[str, tuple[float, float, float, float, float]] = {")
    for dimension, theta in shifts.items():
        print(f'    "{dimension}": ({", ".join(map(str, theta))}),')
    print("}\n\nLONE_ANSWER_PROBABILITY: dict[str, float] = {")
    for dimension, rate in lone.items():
        print(f'    "{dimension}": {rate},')
    print("}")


def _fit_shift(table_log_odds, features, y, weight) -> tuple[float, ...]:
    """(s, a, b, ...) maximising the weighted log-likelihood of right/wrong y under log-odds
    s * table_log_odds + a + features @ (b, ...)."""
    import numpy as np
    from scipy.optimize import minimize

    design = np.column_stack([table_log_odds, np.ones(len(table_log_odds)), features])

    def loss(theta: np.ndarray) -> float:
        z = design @ theta
        return float(np.sum(weight * (np.logaddexp(0.0, z) - y * z)))

    start = np.zeros(design.shape[1])
    start[0] = 1.0  # the table as it is
    theta = minimize(loss, start, method="BFGS").x
    return tuple(round(float(v), 3) for v in theta)


def layer_timing() -> None:
    """A 512-unit layer with 2,560 answers, aggregated as the worker does (median of 5 runs)."""
    answers, _, _ = simulate(n_units=512, redundancy=5, spam_share=0.3, seed=0)
    aggregation.aggregate(answers)  # imports pandas / Crowd-Kit once, as a warm worker has
    times = []
    for _ in range(5):
        started = time.perf_counter()
        aggregation.aggregate(answers)
        times.append(time.perf_counter() - started)
    print(f"\naggregation of a 512-unit layer with {len(answers)} answers: median {statistics.median(times):.3f} s "
          f"(min {min(times):.3f}, max {max(times):.3f}; target < 2 s)")


def main(args) -> None:
    if args.fit_calibration:
        fit_calibration(CALIBRATION_SEEDS)
        return
    if args.calibration:
        load_calibration(args)
        return
    started = time.perf_counter()
    grid(args)
    load_calibration(args)
    issue_table(args)
    layer_timing()
    print(f"\nwall time {time.perf_counter() - started:.0f} s")


def parse_args(argv: Sequence[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="seconds: 100 units, one seed, 1 and 5 answers at 30%% spammers, no MACE, one issue row")
    parser.add_argument("--units", type=int, default=300)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--redundancy", type=int, nargs="+", default=[1, 3, 5, 7])
    parser.add_argument("--spam", type=float, nargs="+", default=[0.0, 0.3, 0.5])
    parser.add_argument("--fit-calibration", action="store_true",
                        help="print reliability.CALIBRATION, LAYER_SHIFT and LONE_ANSWER_PROBABILITY fitted on "
                             "CALIBRATION_SEEDS of both crowds")
    parser.add_argument("--calibration", action="store_true",
                        help="print only the reliability tables of both crowds at --seeds")
    args = parser.parse_args(argv)
    if args.quick:
        args.units, args.seeds, args.redundancy, args.spam = 100, [0], [1, 5], [0.3]
    return args


if __name__ == "__main__":
    main(parse_args())
