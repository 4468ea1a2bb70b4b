"""Truth inference with one reliability per worker: a regularised one-coin Dawid-Skene model.

Each worker w answers right with probability s_w and otherwise gives one of the other answers, drawn
in proportion to how often the layer's answers use it (or uniformly); one skill explains every part of
an answer (its category, its word). The skills are fitted by EM with a Beta prior, so a worker seen a
dozen times is pulled towards the crowd's typical reliability instead of being trusted (or distrusted)
on a handful of answers: the full Dawid-Skene model fits a K x K confusion matrix per worker and, with
the ~20 answers a worker gives per layer, does worse than a plain vote (benchmarks/RESULTS.md).

EM's posteriors are not probabilities one can take at their word: plug-in skills make them
overconfident where answers split, and underconfident where one answer carries the unit. `calibrated`
maps them through a monotone table fitted (isotonic regression on the log-odds) on the load benchmark's
simulated crowd, whose reliability table then stays within 5 points of the observed accuracy in every
bin of 50+ units; `python -m benchmarks.aggregation_bench --fit-calibration` refits it. A crowd whose
errors the model does not describe (workers who systematically file part as object) is not calibrated
by it: the benchmark prints its reliability table on such a crowd too.

Framework-free (numpy only) so the arithmetic can be checked by hand and the benchmark can call it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

ITERATIONS = 50
TOLERANCE = 1e-6
# Beta(PRIOR_RIGHT, PRIOR_WRONG) pseudo-answers on every worker's skill: a prior mean of 0.6.
PRIOR_RIGHT = 3.0
PRIOR_WRONG = 2.0
SKILL_FLOOR, SKILL_CEILING = 0.01, 0.99


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
        tie_key=None, uniform_errors: Sequence[str] = (),
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
    dims: dict[str, _Dimension] = {}
    for d in dimensions:
        values = [r[2][d] for r in records]
        order = list(dict.fromkeys([*(label_space or {}).get(d, []), *sorted(set(values), key=tie_key)]))
        dims[d] = _Dimension(tasks, workers, values, len(task_names), order, uniform_errors=d in uniform_errors)

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
    labels = {name: _best(_combine([dims[d].distribution(project) for d, project in sources]), task_names,
                          n_per_task, tie_key)
              for name, sources in publish.items()}
    return Fit(labels=labels,
               skills={w: float(skills[i]) for i, w in enumerate(worker_names)}, iterations=done)


# Log-odds of the raw posterior -> observed accuracy on the load benchmark's simulated crowd (knots of an
# isotonic fit on seeds 100-102, which the benchmark's tables and the tests do not use).
CALIBRATION: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "category": (
        (-6.378, -2.95, -1.949, -1.169, -0.598, -0.151, 0.178, 0.504, 0.83, 1.19, 1.531, 1.914, 2.3, 2.699, 3.054,
         3.438, 3.769, 4.128, 4.495, 4.914, 5.503, 6.316, 7.221, 8.124, 8.933, 9.759, 10.664, 11.475, 12.331, 13.209,
         14.061, 14.948, 15.856, 16.787, 17.785, 18.885, 20.0, 21.072, 22.225, 23.397, 24.713, 26.061, 27.641,
         29.453, 29.933),
        (0.0, 0.1303, 0.2128, 0.3206, 0.3518, 0.4261, 0.4891, 0.5445, 0.5595, 0.6003, 0.6494, 0.6797, 0.7544, 0.8151,
         0.832, 0.8977, 0.9016, 0.9195, 0.9275, 0.9275, 0.9288, 0.9488, 0.9488, 0.9838, 0.9845, 0.9916, 0.9916,
         0.9953, 0.9976, 0.9976, 0.9976, 0.9986, 0.9992, 0.9992, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0,
         1.0),
    ),
    "word": (
        (-5.21, -1.694, -0.831, -0.398, -0.128, 0.098, 0.295, 0.503, 0.693, 0.881, 1.078, 1.264, 1.451, 1.638, 1.841,
         2.058, 2.3, 2.614, 3.051, 3.915, 5.021, 6.194, 7.203, 8.13, 9.029, 9.895, 10.788, 11.762, 12.738, 13.721,
         14.709, 15.632, 16.547, 17.578, 18.721, 19.942, 21.215, 22.375, 23.624, 24.852, 26.213, 27.67, 29.362,
         29.933),
        (0.0, 0.2285, 0.2774, 0.343, 0.3898, 0.4431, 0.4744, 0.5563, 0.5713, 0.5713, 0.6032, 0.6531, 0.7197, 0.7236,
         0.7624, 0.8187, 0.8203, 0.8203, 0.8203, 0.8571, 0.8876, 0.9509, 0.9509, 0.9725, 0.9775, 0.9934, 0.9934,
         0.9934, 0.9961, 0.9961, 0.9985, 0.9992, 0.9992, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0),
    ),
}

LOGIT_LIMIT = 30.0


def logit(probability: float) -> float:
    p = min(max(probability, 1e-13), 1 - 1e-13)
    return max(-LOGIT_LIMIT, min(LOGIT_LIMIT, math.log(p / (1 - p))))


def calibrated(dimension: str, probability: float) -> float:
    """The posterior of a published label mapped to the accuracy such posteriors had on the benchmark."""
    knots = CALIBRATION.get(dimension)
    if not knots:
        return probability
    return float(np.interp(logit(probability), knots[0], knots[1]))
