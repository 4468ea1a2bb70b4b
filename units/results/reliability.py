"""Truth inference with one reliability per worker: a regularised one-coin Dawid-Skene model.

Each worker w answers right with probability s_w and otherwise gives one of the other answers, drawn
in proportion to how often the layer's answers use it (or uniformly); one skill explains every part of
an answer (its category, its word). The skills are fitted by EM with a Beta prior, so a worker seen a
dozen times is pulled towards the crowd's typical reliability instead of being trusted (or distrusted)
on a handful of answers: the full Dawid-Skene model fits a K x K confusion matrix per worker and, with
the ~20 answers a worker gives per layer, does worse than a plain vote (benchmarks/RESULTS.md).

EM's posteriors are not probabilities one can take at their word: plug-in skills make them
overconfident where answers split, and underconfident where one answer carries the unit; and the views
that make the label accurate (the answered pair) overstate it where workers systematically file the right
thing under a neighbouring category. The category's probability is therefore read from a second model
that describes such confusion (`_ConfusedDimension`: a confusion matrix shared by the crowd plus one per
worker, tied to it; skills held close to the crowd's typical one), and `calibrated` maps probabilities through
monotone tables (isotonic regression on the log-odds; per dimension one for crowds whose confusion is spread and
one for concentrated ones) fitted on two simulated crowds, one with independent errors and one with
pair-confusers and adversaries. The same posterior is right less often where the crowd's wrong answers
concentrate on one neighbour than where they spread, and its meaning drifts with the crowd's reliability and the
number of answers, so each table is followed by a shift of the log-odds by statistics of the layer's own answers
(`LayerStatistics`: the fit's `concentration` of the category confusion and its mean skill; no truth needed). A
label from one answer has no agreement to weigh and is stated at the rate lone answers were right
(`LONE_ANSWER_PROBABILITY`). `python -m benchmarks.aggregation_bench --fit-calibration` refits tables, shifts
and rates, and the benchmark prints the reliability table on each crowd.

Framework-free (numpy only) so the arithmetic can be checked by hand and the benchmark can call it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

ITERATIONS = 50
TOLERANCE = 1e-6
# Beta(PRIOR_RIGHT, PRIOR_WRONG) pseudo-answers on every worker's skill: a prior mean of 0.6.
PRIOR_RIGHT = 3.0
PRIOR_WRONG = 2.0
SKILL_FLOOR, SKILL_CEILING = 0.01, 0.99
# Pseudo-answers per true label on the shared confusion of a `confused` dimension, spread evenly.
CONFUSION_PRIOR = 5.0
# Pseudo-answers per true label that tie a worker's own confusion matrix to the shared model.
OWN_CONFUSION = 30.0
# The skill prior of the model the category's probability is read from: Beta(24, 16), the same mean as the label
# model's but worth 40 answers. Skills fitted from a worker's ~20 answers make the posteriors overconfident by
# an amount that depends on the crowd; held this close to the crowd's typical reliability, that part shrinks
# (chosen by cross-validation over simulated layers, benchmarks/RESULTS.md), and the table and the concentration
# shift below take out the rest.
PROBABILITY_PRIOR_RIGHT = 24.0
PROBABILITY_PRIOR_WRONG = 16.0


@dataclass
class Posterior:
    """The inferred answer of one task: label, its posterior probability (before `calibrated`), and how many
    answers the task had."""

    label: Hashable
    probability: float
    n_answers: int


@dataclass
class Fit:
    """What the model infers: per dimension (e.g. "category", "word") per task, and one skill per worker."""

    labels: dict[str, dict[Hashable, Posterior]]
    skills: dict[Hashable, float]
    iterations: int
    # Per published name, per task, the probability of each label someone answered there.
    distributions: dict[str, dict[Hashable, dict[Hashable, float]]] = field(default_factory=dict)
    # Per `confused` dimension, how concentrated the crowd's wrong answers are (`_ConfusedDimension.concentration`).
    concentration: dict[str, float] = field(default_factory=dict)
    # The workers' fitted skills averaged over the answers (a worker counts once per answer they gave).
    mean_skill: float | None = None

    def layer(self) -> LayerStatistics:
        """What `calibrated` reads of this layer besides a label's own posterior."""
        return LayerStatistics(concentration=self.concentration.get("category"), mean_skill=self.mean_skill)


@dataclass(frozen=True)
class LayerStatistics:
    """Statistics of a layer's answers, no truth needed, that tell apart crowds on which the same posterior is
    right more or less often: how concentrated the category confusion is (`_ConfusedDimension.concentration`) and
    the answer-weighted mean skill."""

    concentration: float | None = None
    mean_skill: float | None = None


class _Dimension:
    """One answered dimension (category or word) encoded as integer arrays for the EM loop."""

    def __init__(self, tasks: np.ndarray, workers: np.ndarray, values: Sequence[Hashable], n_tasks: int,
                 order: Sequence[Hashable], uniform_errors: bool = False) -> None:
        rank = {v: i for i, v in enumerate(order)}
        # Candidate labels of a task are the labels answered on it: (task, label) pairs, deduplicated.
        label_ids = np.array([rank[v] for v in values], dtype=np.int64)
        self.n_labels = max(len(order), 2)
        self.order = list(order)
        pair_keys = tasks * self.n_labels + label_ids
        keys, self.answer_pair = np.unique(pair_keys, return_inverse=True)
        self.pair_task = keys // self.n_labels
        self.pair_label = keys % self.n_labels
        self.tasks, self.workers, self.labels = tasks, workers, label_ids
        self.n_tasks = n_tasks
        self.n_per_task = np.bincount(tasks, minlength=n_tasks)
        # A wrong answer is drawn in proportion to how often each label is answered (`popularity`, smoothed
        # by one): "no clear concept" is a far commoner slip than any one word, and two wrong answers that
        # agree on it say less than two that agree on a rare word.
        counts = np.bincount(label_ids, minlength=self.n_labels).astype(float) + 1.0
        if uniform_errors:  # the classic one-coin model: every other label equally likely
            counts = np.ones(self.n_labels)
        self.popularity = counts / counts.sum()
        self.log_g = -np.log1p(-self.popularity)  # log 1 / (1 - q(k)): the wrong answers' share without k
        # Each answer starts as a vote: its pair's initial posterior is its share of the task's answers.
        votes = np.bincount(self.answer_pair, minlength=len(keys)).astype(float)
        per_task = np.bincount(self.pair_task, weights=votes, minlength=n_tasks)
        self.pair_post = votes / per_task[self.pair_task]
        self.unseen_post = np.zeros(n_tasks)
        self.unseen_norm = np.ones(n_tasks)
        self.prior = np.full(self.n_labels, 1.0 / self.n_labels)

    def _weight(self, n: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """prior(k) / (1 - q(k)) ** n: a label's prior times the likelihood factor every answer gives it."""
        return self.prior[labels] * np.exp(n * self.log_g[labels])

    def _all_labels(self, per_task: np.ndarray) -> np.ndarray:
        """Per task, the sum over every label k of per_task[t] * prior(k) / (1 - q(k)) ** n_t, by answer count."""
        out = np.zeros(self.n_labels)
        for n in np.unique(self.n_per_task):
            selected = self.n_per_task == n
            out += per_task[selected].sum() * self.prior * np.exp(n * self.log_g)
        return out

    def m_step_prior(self) -> None:
        # Class priors from the posteriors with one pseudo-count per label (Dirichlet(1) smoothing). A task's
        # mass on labels nobody answered there splits among them in proportion to their likelihood weight.
        ratio = self.unseen_post / self.unseen_norm
        seen = self.pair_post - ratio[self.pair_task] * self._weight(self.n_per_task[self.pair_task], self.pair_label)
        mass = np.bincount(self.pair_label, weights=seen, minlength=self.n_labels) + self._all_labels(ratio) + 1.0
        self.prior = mass / mass.sum()

    def e_step(self, skills: np.ndarray) -> None:
        """Posterior over each task's answered labels plus the mass of labels nobody gave there.

        P(answer a | truth k) = s if a == k else (1 - s) q(a) / (1 - q(k)). Over a task's answers, the factor
        (1 - s) q(a) of every answer is shared by all k and cancels; what is left for k is
        (1 - q(k)) ** -n_t times, per answer equal to k, s (1 - q(k)) / ((1 - s) q(k)).
        """
        s = skills[self.workers]
        bonus_per_answer = (np.log(s) - np.log1p(-s) - np.log(self.popularity[self.labels])
                            - self.log_g[self.labels])
        bonus = np.bincount(self.answer_pair, weights=bonus_per_answer, minlength=len(self.pair_task))
        n_pair = self.n_per_task[self.pair_task]
        log_seen = np.log(self.prior[self.pair_label]) + n_pair * self.log_g[self.pair_label] + bonus
        seen_weight = np.bincount(self.pair_task, weights=self._weight(n_pair, self.pair_label),
                                  minlength=self.n_tasks)
        every = np.zeros(self.n_tasks)
        for n in np.unique(self.n_per_task):
            every[self.n_per_task == n] = float(np.sum(self.prior * np.exp(n * self.log_g)))
        n_unseen = self.n_labels - np.bincount(self.pair_task, minlength=self.n_tasks)
        # The labels nobody answered on the task get no bonus: together they weigh every label's weight
        # less the answered ones'.
        self.unseen_norm = np.clip(every - seen_weight, 1e-300, None)
        log_unseen = np.where(n_unseen > 0, np.log(self.unseen_norm), -np.inf)
        top = np.maximum(_group_max(log_seen, self.pair_task, self.n_tasks), log_unseen)
        seen = np.exp(log_seen - top[self.pair_task])
        unseen = np.exp(log_unseen - top)
        total = np.bincount(self.pair_task, weights=seen, minlength=self.n_tasks) + unseen
        self.pair_post = seen / total[self.pair_task]
        self.unseen_post = unseen / total

    def correct_mass(self) -> np.ndarray:
        """Per answer, the posterior probability that it is the task's true label."""
        return self.pair_post[self.answer_pair]

    def distribution(self, project=None) -> dict[int, dict[Hashable, float]]:
        """Per task index, the probability of each answered label; `project` maps a label to the published
        one (e.g. a (word, category) pair to its word), adding the probabilities of labels it merges."""
        project = project or (lambda label: label)
        mass: dict[int, dict[Hashable, float]] = {}
        for t, lab, p in zip(self.pair_task.tolist(), self.pair_label.tolist(), self.pair_post.tolist()):
            key = project(self.order[lab])
            per_task = mass.setdefault(t, {})
            per_task[key] = per_task.get(key, 0.0) + p
        return mass


class _ConfusedDimension:
    """A dimension with a small label space (the categories) whose wrong answers depend on the truth.

    P(answer a | truth k) = s if a == k else (1 - s) C(k, a): the skill s is the worker's, the confusion
    C(k, .) (a distribution over the other labels) is shared by every worker and fitted by EM with
    `CONFUSION_PRIOR` pseudo-answers spread evenly. A crowd that files parts as objects then reads a split
    part/object vote as the weak evidence it is, where a model with errors spread evenly (or by how common
    each answer is) would call it settled. With `own_confusion`, each worker has their own matrix: their
    expected (truth, answer) counts plus that many pseudo-answers per truth drawn from the shared model, so
    the few workers who make the confusion are told from the many who do not.
    """

    def __init__(self, tasks: np.ndarray, workers: np.ndarray, values: Sequence[Hashable], n_tasks: int,
                 order: Sequence[Hashable], own_confusion: float | None = None) -> None:
        rank = {v: i for i, v in enumerate(order)}
        self.own_confusion = own_confusion
        self.order = list(order)
        self.n_labels = k = max(len(order), 2)
        self.tasks, self.workers, self.n_tasks = tasks, workers, n_tasks
        self.labels = np.array([rank[v] for v in values], dtype=np.int64)
        self.answered = np.zeros((n_tasks, k), dtype=bool)
        self.answered[tasks, self.labels] = True
        votes = np.zeros((n_tasks, k))
        np.add.at(votes, (tasks, self.labels), 1.0)
        self.post = votes / votes.sum(axis=1, keepdims=True)
        self.prior = np.full(k, 1.0 / k)
        self.confusion = (1.0 - np.eye(k)) / (k - 1)
        self.off = ~np.eye(k, dtype=bool)
        self.own = np.zeros((int(workers.max()) + 1, k, k))  # per worker, expected (truth, answer) counts

    def m_step_prior(self) -> None:
        mass = self.post.sum(axis=0) + 1.0
        self.prior = mass / mass.sum()
        # Expected count of (truth k, answer a) over the wrong answers, plus the even pseudo-answers.
        counts = np.zeros((self.n_labels, self.n_labels))
        np.add.at(counts.T, self.labels, self.post[self.tasks])
        counts = np.where(self.off, counts + CONFUSION_PRIOR / (self.n_labels - 1), 0.0)
        self.confusion = counts / counts.sum(axis=1, keepdims=True)
        if self.own_confusion is not None:
            self.own[:] = 0.0
            np.add.at(self.own, (self.workers[:, None], np.arange(self.n_labels)[None, :], self.labels[:, None]),
                      self.post[self.tasks])

    def e_step(self, skills: np.ndarray) -> None:
        # The shared model, per worker: the skill on the diagonal, the shared confusion off it.
        model = (1.0 - skills)[:, None, None] * np.where(self.off, self.confusion, 0.0)[None]
        model[:, np.arange(self.n_labels), np.arange(self.n_labels)] = skills[:, None]
        if self.own_confusion is not None:
            # A worker's own confusion matrix: their expected (truth, answer) counts plus `own_confusion`
            # pseudo-answers per truth drawn from the shared model, so a dozen answers move it only a little.
            model = (self.own + self.own_confusion * model) / (self.own.sum(axis=2, keepdims=True)
                                                                + self.own_confusion)
        # Per answer, log P(answer | truth k) for every k.
        per_answer = np.log(model[self.workers, :, self.labels])
        log_post = np.zeros((self.n_tasks, self.n_labels))
        np.add.at(log_post, self.tasks, per_answer)
        log_post += np.log(self.prior)
        log_post -= log_post.max(axis=1, keepdims=True)
        post = np.exp(log_post)
        self.post = post / post.sum(axis=1, keepdims=True)

    def correct_mass(self) -> np.ndarray:
        return self.post[self.tasks, self.labels]

    def concentration(self) -> float:
        """Mean over the true labels of the largest share one wrong label takes in the shared confusion: 1 / (K - 1)
        when errors spread evenly, towards 1 where the crowd files one category under one neighbour."""
        return float(self.confusion.max(axis=1).mean())

    def distribution(self, project=None) -> dict[int, dict[Hashable, float]]:
        """As `_Dimension.distribution`: the answered labels' probabilities (the rest is left unnamed)."""
        project = project or (lambda label: label)
        mass: dict[int, dict[Hashable, float]] = {}
        for t, lab in zip(*np.nonzero(self.answered)):
            key = project(self.order[lab])
            per_task = mass.setdefault(int(t), {})
            per_task[key] = per_task.get(key, 0.0) + float(self.post[t, lab])
        return mass


def _combine(parts: list[dict[int, dict[Hashable, float]]]) -> dict[int, dict[Hashable, float]]:
    """Product of the sources' probabilities over the labels all of them hold, renormalised together with
    the product of what each leaves to labels nobody answered (so one lone answer stays uncertain)."""
    if len(parts) == 1:
        return parts[0]
    out: dict[int, dict[Hashable, float]] = {}
    for t, first in parts[0].items():
        keys = [k for k in first if all(k in part.get(t, {}) for part in parts[1:])]
        product = {k: math.prod(part[t][k] for part in parts) for k in keys}
        rest = math.prod(max(0.0, 1.0 - sum(part[t].values())) for part in parts)
        total = sum(product.values()) + rest
        out[t] = {k: v / total for k, v in product.items()} if total > 0 else {k: 1 / len(keys) for k in keys}
    return out


def _best(mass: dict[int, dict[Hashable, float]], task_names: Sequence[Hashable], n_per_task: np.ndarray,
          tie_key) -> dict[Hashable, Posterior]:
    """Per task, the most probable label (ties broken by `tie_key`, so reruns agree)."""
    out: dict[Hashable, Posterior] = {}
    for t, options in mass.items():
        label, p = min(options.items(), key=lambda kv: (-round(kv[1], 12), tie_key(kv[0])))
        out[task_names[t]] = Posterior(label=label, probability=float(min(p, 1.0)), n_answers=int(n_per_task[t]))
    return out


def _group_max(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    out = np.full(n_groups, -np.inf)
    np.maximum.at(out, groups, values)
    return out


def fit(records: Sequence[tuple[Hashable, Hashable, Mapping[str, Hashable]]], *, dimensions: Sequence[str],
        label_space: dict[str, Sequence[Hashable]] | None = None, iterations: int = ITERATIONS,
        tol: float = TOLERANCE, prior_right: float = PRIOR_RIGHT, prior_wrong: float = PRIOR_WRONG,
        tie_key=None, uniform_errors: Sequence[str] = (), confused: Sequence[str] = (),
        own_confusion: float | None = None,
        publish: Mapping[str, Sequence[tuple[str, Callable[[Hashable], Hashable] | None]]] | None = None) -> Fit:
    """Fit the model to (task, worker, {dimension: answer}) records.

    `label_space` names the possible answers of a dimension (e.g. the six categories); a dimension not
    named there has the answers given anywhere in the records as its space. `tie_key` orders labels of
    equal probability (default: their string form). In the dimensions named in `uniform_errors` a wrong
    answer is any other label with equal probability, elsewhere in proportion to its use. `publish`
    names what is read out: published name -> the (dimension, projection of its labels) whose posteriors
    are multiplied; default each dimension as it is.
    """
    tie_key = tie_key or (lambda label: str(label))
    if not records:
        return Fit(labels={name: {} for name in (publish or dimensions)}, skills={}, iterations=0)
    task_names = list(dict.fromkeys(r[0] for r in records))
    worker_names = list(dict.fromkeys(r[1] for r in records))
    task_index = {t: i for i, t in enumerate(task_names)}
    worker_index = {w: i for i, w in enumerate(worker_names)}
    tasks = np.array([task_index[r[0]] for r in records], dtype=np.int64)
    workers = np.array([worker_index[r[1]] for r in records], dtype=np.int64)
    dims: dict[str, _Dimension | _ConfusedDimension] = {}
    for d in dimensions:
        values = [r[2][d] for r in records]
        order = list(dict.fromkeys([*(label_space or {}).get(d, []), *sorted(set(values), key=tie_key)]))
        if d in confused:
            dims[d] = _ConfusedDimension(tasks, workers, values, len(task_names), order, own_confusion)
        else:
            dims[d] = _Dimension(tasks, workers, values, len(task_names), order,
                                 uniform_errors=d in uniform_errors)

    n_answers = np.bincount(workers, minlength=len(worker_names)).astype(float)
    skills = np.full(len(worker_names), prior_right / (prior_right + prior_wrong))
    done = 0
    for step in range(1, iterations + 1):
        done = step
        right = np.zeros(len(worker_names))
        for dim in dims.values():
            right += np.bincount(workers, weights=dim.correct_mass(), minlength=len(worker_names))
            dim.m_step_prior()
        new = (prior_right + right) / (prior_right + prior_wrong + len(dims) * n_answers)
        new = np.clip(new, SKILL_FLOOR, SKILL_CEILING)
        for dim in dims.values():
            dim.e_step(new)
        change = float(np.max(np.abs(new - skills)))
        skills = new
        if change < tol:
            break
    publish = publish or {d: [(d, None)] for d in dimensions}
    n_per_task = np.bincount(tasks, minlength=len(task_names))
    masses = {name: _combine([dims[d].distribution(project) for d, project in sources])
              for name, sources in publish.items()}
    labels = {name: _best(mass, task_names, n_per_task, tie_key) for name, mass in masses.items()}
    return Fit(labels=labels,
               skills={w: float(skills[i]) for i, w in enumerate(worker_names)}, iterations=done,
               distributions={name: {task_names[t]: m for t, m in mass.items()} for name, mass in masses.items()},
               concentration={d: dim.concentration() for d, dim in dims.items()
                              if isinstance(dim, _ConfusedDimension)},
               mean_skill=float(skills[workers].mean()))


# Log-odds of the raw probability -> observed accuracy of labels drawn from two or more answers, on the load
# benchmark's crowd and the aggregation benchmark's (pair-confusers, constant spammers, adversaries) weighed alike:
# knots of isotonic fits on `aggregation_bench.CALIBRATION_SEEDS`, which the benchmark's tables and the tests do
# not use. Per dimension two tables: one fitted on layers whose category confusion is spread (`concentration`
# below `TABLE_SPLIT`), "<dimension>/concentrated" on the others; a layer near the split reads a blend of both.
# The same posterior is right with a differently shaped curve on the two kinds of crowd, most of all among the
# doubtful labels, which one table and a shift could not follow (benchmarks/RESULTS.md).
CALIBRATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "category": (
        (-7.768, -2.109, -1.105, -0.263, 0.459, 1.01, 1.435, 1.787, 2.093, 2.362, 2.623, 2.882, 3.138, 3.395, 3.649,
         3.907, 4.164, 4.404, 4.641, 4.866, 5.088, 5.3, 5.513, 5.729, 5.95, 6.177, 6.411, 6.657, 6.914, 7.182,
         7.451, 7.733, 8.011, 8.292, 8.588, 8.902, 9.25, 9.625, 10.024, 10.487, 10.97, 11.478, 12.033, 12.636,
         13.283, 14.011, 14.836, 15.839, 17.347, 19.427, 26.482),
        (0.0, 0.469, 0.5058, 0.5476, 0.6418, 0.7104, 0.7528, 0.7838, 0.8224, 0.8343, 0.8613, 0.8926, 0.9187, 0.9278,
         0.9489, 0.9531, 0.9612, 0.9612, 0.972, 0.9775, 0.9861, 0.9861, 0.9861, 0.9928, 0.9928, 0.9954, 0.9958,
         0.9978, 0.9978, 0.9978, 0.9978, 0.9988, 0.9988, 0.9998, 0.9998, 0.9998, 0.9998, 0.9998, 1.0, 1.0, 1.0, 1.0,
         1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ),
    "category/concentrated": (
        (-8.907, -2.995, -2.269, -1.718, -1.277, -0.864, -0.472, -0.091, 0.263, 0.563, 0.859, 1.122, 1.371, 1.586,
         1.777, 1.954, 2.129, 2.293, 2.453, 2.62, 2.789, 2.955, 3.13, 3.302, 3.486, 3.664, 3.862, 4.06, 4.264,
         4.452, 4.638, 4.834, 5.029, 5.229, 5.434, 5.641, 5.862, 6.091, 6.336, 6.606, 6.895, 7.195, 7.497, 7.861,
         8.279, 8.774, 9.305, 9.928, 10.904, 12.438, 20.949),
        (0.3086, 0.4061, 0.4424, 0.444, 0.4531, 0.4867, 0.4975, 0.5437, 0.553, 0.5777, 0.6587, 0.6618, 0.6815,
         0.7381, 0.7453, 0.7453, 0.759, 0.8002, 0.8042, 0.8407, 0.8407, 0.8466, 0.8713, 0.8772, 0.8798, 0.9005,
         0.9256, 0.9256, 0.9379, 0.9379, 0.9471, 0.9655, 0.9655, 0.9666, 0.9666, 0.9801, 0.9801, 0.9801, 0.9833,
         0.994, 0.994, 0.9952, 0.9952, 0.9957, 0.9977, 0.9989, 0.9989, 1.0, 1.0, 1.0, 1.0),
    ),
    "word": (
        (-3.803, -0.945, -0.537, -0.268, -0.025, 0.229, 0.507, 0.819, 1.172, 1.551, 1.938, 2.317, 2.668, 2.994,
         3.319, 3.647, 3.978, 4.314, 4.645, 4.992, 5.345, 5.695, 6.047, 6.391, 6.737, 7.102, 7.469, 7.837, 8.231,
         8.638, 9.064, 9.504, 9.948, 10.421, 10.901, 11.38, 11.86, 12.352, 12.881, 13.489, 14.221, 15.055, 15.98,
         16.963, 18.122, 19.475, 21.012, 22.735, 24.966, 28.862, 29.933),
        (0.0928, 0.4, 0.467, 0.4814, 0.5361, 0.5589, 0.5995, 0.6481, 0.7094, 0.7818, 0.8418, 0.8936, 0.9067, 0.931,
         0.956, 0.9661, 0.9769, 0.979, 0.9846, 0.992, 0.9921, 0.9937, 0.9962, 0.9965, 0.9976, 0.9976, 0.9976,
         0.9995, 0.9996, 0.9999, 0.9999, 0.9999, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
         1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ),
    "word/concentrated": (
        (-3.22, -0.815, -0.475, -0.234, -0.026, 0.196, 0.449, 0.729, 1.087, 1.487, 1.985, 2.535, 2.948, 3.331,
         3.651, 3.961, 4.242, 4.527, 4.834, 5.141, 5.477, 5.822, 6.221, 6.653, 7.109, 7.54, 7.957, 8.338, 8.708,
         9.068, 9.415, 9.799, 10.174, 10.581, 11.011, 11.465, 11.98, 12.539, 13.083, 13.662, 14.304, 15.01, 15.778,
         16.646, 17.481, 18.38, 19.414, 20.659, 22.26, 24.688, 29.933),
        (0.0, 0.3221, 0.4209, 0.4887, 0.4887, 0.5776, 0.6083, 0.6687, 0.7126, 0.7451, 0.7838, 0.8987, 0.9365,
         0.9591, 0.9702, 0.9763, 0.9797, 0.9829, 0.9919, 0.9919, 0.9919, 0.9919, 0.994, 0.9964, 1.0, 1.0, 1.0, 1.0,
         1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
         1.0, 1.0),
    ),
}

TABLE_SPLIT: dict[str, float] = {"category": 0.29, "word": 0.31}
# Half the width of the concentrations over which the two tables are blended, so the map has no step at the split.
SPLIT_BLEND = 0.03

LOGIT_LIMIT = 30.0
# Per dimension, (s, a, b, c, d): after the table, the log-odds l become s * l + a + b * concentration
# + c * mean skill + d * answers (`LayerStatistics`; the unit's answer count clamped to `SHIFT_ANSWERS`), a
# logistic regression on the same seeds. The same posterior is right more often where the crowd's errors spread
# evenly than where whole groups of workers file a category under its neighbour, and its meaning drifts with how
# reliable the layer's crowd is and how many answers it rests on: one table alone leaves one kind of crowd
# underconfident and the other overconfident (benchmarks/RESULTS.md).
LAYER_SHIFT: dict[str, tuple[float, float, float, float, float]] = {
    "category": (0.967, -0.592, -1.633, 1.953, 0.027),
    "word": (1.023, -0.263, -0.086, 0.072, 0.057),
}
# The answer counts the shift was fitted on; a unit with fewer or more answers is read as the nearest of these.
SHIFT_ANSWERS = (3, 7)
# The log-odds the shift starts from are clamped to +-log(1e4): the table states 1.0 for its top bins, and a
# label stated 1.0 that is wrong would otherwise weigh as much as thousands of right ones in the fit.
SHIFT_LOGIT_LIMIT = math.log(1e4)
# The probability of a label that rests on one answer: how often a lone answer was right on the two crowds,
# weighed alike. With no second answer on the unit there is no agreement to weigh, and on a layer where no unit
# has two answers nothing tells a good worker from a poor one, so any finer number would be a guess; adaptive
# redundancy reads this as low and asks for more answers (benchmarks/RESULTS.md).
LONE_ANSWER_PROBABILITY: dict[str, float] = {
    "category": 0.5755,
    "word": 0.6004,
}


def logit(probability: float, limit: float = LOGIT_LIMIT) -> float:
    p = min(max(probability, 1e-13), 1 - 1e-13)
    return max(-limit, min(limit, math.log(p / (1 - p))))


def is_lone(n_answers: int) -> bool:
    """A label that rests on one answer: stated at `LONE_ANSWER_PROBABILITY`, not read through the tables."""
    return n_answers <= 1


def table_probability(dimension: str, probability: float, concentration: float | None = None) -> float:
    """The posterior of a published label from two or more answers read through its `CALIBRATION` tables: the
    spread crowd's where the layer's concentration is unknown or below `TABLE_SPLIT` - `SPLIT_BLEND`, the
    concentrated crowd's above `TABLE_SPLIT` + `SPLIT_BLEND`, a linear blend between."""
    spread, concentrated = CALIBRATION.get(dimension), CALIBRATION.get(f"{dimension}/concentrated")
    if not spread:
        return probability
    x = logit(probability)
    p = float(np.interp(x, spread[0], spread[1]))
    if concentration is None or not concentrated:
        return p
    share = min(max((concentration - TABLE_SPLIT[dimension] + SPLIT_BLEND) / (2 * SPLIT_BLEND), 0.0), 1.0)
    return (1.0 - share) * p + share * float(np.interp(x, concentrated[0], concentrated[1]))


def shift_features(n_answers: int, layer: LayerStatistics) -> tuple[float, float, float] | None:
    """(concentration, mean skill, clamped answer count) as `LAYER_SHIFT` weighs them; None where the layer's
    statistics are not known."""
    if layer.concentration is None or layer.mean_skill is None:
        return None
    low, high = SHIFT_ANSWERS
    return layer.concentration, layer.mean_skill, float(min(max(n_answers, low), high))


def calibrated(dimension: str, probability: float, n_answers: int = 2,
               layer: LayerStatistics | None = None) -> float:
    """The probability that a published label (from `n_answers` answers, with raw posterior `probability`) is
    right: a lone answer's is `LONE_ANSWER_PROBABILITY`; otherwise the posterior goes through its tables and, where
    the layer's statistics are given, is moved by `LAYER_SHIFT` for the crowd at hand."""
    if is_lone(n_answers) and dimension in LONE_ANSWER_PROBABILITY:
        return LONE_ANSWER_PROBABILITY[dimension]
    p = table_probability(dimension, probability, layer.concentration if layer is not None else None)
    shift = LAYER_SHIFT.get(dimension)
    features = shift_features(n_answers, layer) if layer is not None else None
    if shift is None or features is None:
        return p
    z = shift[0] * logit(p, SHIFT_LOGIT_LIMIT) + shift[1] + sum(w * f for w, f in zip(shift[2:], features))
    return 1.0 / (1.0 + math.exp(-z))
