"""The qualification test, one per project: the project's gold units (their concept is known); pass by
matching enough of them to be offered that project's HITs.

An annotator may take the test of a project that offers them work (a batch open to the crowd, or one
of a pool they are in), or of one they are a member of; any other project does not exist for them.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from units.dissection.models import Unit
from units.projects.access import is_site_admin, project_ids
from units.projects.models import Pool, Project

from .annotators import annotator_qualify, is_qualified
from .errors import Conflict, CrowdError
from .models import HitBatch, Qualification, QualificationAttempt, QualificationSettings
from .validation import WORD_MAX, clean_word, gold_parts


def mark_qualified(user: User, project: Project, *, by: User | None = None) -> None:
    """Qualify a user for a project without the test (tests, the demo, a requester's decision)."""
    annotator_qualify(user=user, project=project, by=by)


def pass_mark(project: Project | int, total: int) -> int:
    """How many of `total` units must match to pass (the project's fraction, rounded up as the grading does)."""
    return math.ceil(QualificationSettings.of(project).pass_fraction * total - 1e-9)


def gold_units(project: Project | int) -> QuerySet[Unit]:
    """The project's units usable in its test: gold, with a known category and at least one exemplar."""
    project_id = project if isinstance(project, int) else project.pk
    return (Unit.objects.filter(layer__job__project_id=project_id, is_gold=True).exclude(gold_category="")
            .filter(exemplars__kind="top").distinct().select_related("layer"))


def offered_projects(user: User) -> QuerySet[Project]:
    """The projects whose test `user` may see: those with a batch open to the crowd or of a pool they are
    in, those they are qualified for or tried, and those they are a member of (site admins: all)."""
    projects = Project.objects.order_by("name")
    if is_site_admin(user):
        return projects
    offered = HitBatch.objects.filter(project=OuterRef("pk")).filter(
        Q(pool__isnull=True) | Exists(Pool.members.through.objects.filter(pool_id=OuterRef("pool_id"),
                                                                          user_id=user.pk)))
    return projects.filter(
        Exists(offered)
        | Exists(Qualification.objects.filter(project=OuterRef("pk"), user_id=user.pk))
        | Exists(QualificationAttempt.objects.filter(project=OuterRef("pk"), user_id=user.pk))
        | Q(pk__in=project_ids(user))
    )


@dataclass(frozen=True)
class QualificationState:
    """Where a user stands: qualified, no test possible, cooling down, or free to (re)take it."""

    qualified: bool
    no_gold_units: bool
    retake_at: datetime | None
    last_attempt: QualificationAttempt | None

    @property
    def can_take(self) -> bool:
        return not self.qualified and not self.no_gold_units and self.retake_at is None


# A beginner who failed once retries soon, having seen which part of each answer missed, on other gold
# units; each further failure waits longer, up to the project's QualificationSettings.cooldown_minutes:
# 2, 8, 32 minutes, then the cap (60 by default).
FIRST_RETAKE_MINUTES = 2
RETAKE_GROWTH = 4


def retake_wait(failures: int, cap_minutes: int) -> timedelta:
    """How long to wait after the `failures`-th failed attempt in a row."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(minutes=min(cap_minutes, FIRST_RETAKE_MINUTES * RETAKE_GROWTH ** (failures - 1)))


def qualification_state(user: User, project: Project, *, now: datetime | None = None) -> QualificationState:
    """Where `user` stands with `project`'s test; the retake waits count the failures of this test only."""
    now = now or timezone.now()
    finished = QualificationAttempt.objects.filter(user=user, project=project, finished_at__isnull=False)
    last = finished.first()
    retake_at = None
    if last is not None and not last.passed:
        failures = 0
        for passed in finished.values_list("passed", flat=True)[:10]:  # newest first
            if passed:
                break
            failures += 1
        wait = retake_wait(failures, QualificationSettings.of(project).cooldown_minutes)
        if last.finished_at + wait > now:
            retake_at = last.finished_at + wait
    return QualificationState(
        qualified=is_qualified(user, project), no_gold_units=not gold_units(project).exists(),
        retake_at=retake_at, last_attempt=last,
    )


def qualification_start(*, user: User, project: Project, now: datetime | None = None) -> QualificationAttempt:
    """The open attempt at `project`'s test, or a new one over a random draw of its gold units."""
    now = now or timezone.now()
    state = qualification_state(user, project, now=now)
    if state.qualified:
        raise Conflict("You are already qualified.")
    if state.no_gold_units:
        raise CrowdError("This project has no gold units yet, so its test cannot run. A requester can qualify you "
                         "by hand.")
    if state.retake_at is not None:
        raise Conflict(f"You can retake the test after {state.retake_at:%Y-%m-%d %H:%M} UTC.")
    mine = QualificationAttempt.objects.filter(user=user, project=project)
    open_attempt = mine.filter(finished_at__isnull=True).first()
    if open_attempt is not None:
        return open_attempt
    size = QualificationSettings.of(project).size
    ids = list(gold_units(project).values_list("pk", flat=True))
    # A retake shows gold units the user has not seen yet, as far as there are enough of them.
    seen = {pk for unit_ids in mine.values_list("unit_ids", flat=True) for pk in (unit_ids or [])}
    fresh = [pk for pk in ids if pk not in seen]
    chosen = random.sample(fresh, min(size, len(fresh)))
    if len(chosen) < size:
        rest = [pk for pk in ids if pk not in chosen]
        chosen += random.sample(rest, min(size - len(chosen), len(rest)))
    return QualificationAttempt.objects.create(user=user, project=project, unit_ids=chosen, started_at=now)


@transaction.atomic
def qualification_submit(*, attempt: QualificationAttempt, answers: dict[int, tuple[str, str]],
                         now: datetime | None = None) -> QualificationAttempt:
    """Grade an attempt: `answers` maps unit id -> (word, category). Missing answers count as wrong."""
    now = now or timezone.now()
    attempt = QualificationAttempt.objects.select_for_update().get(pk=attempt.pk)
    if attempt.finished_at is not None:
        raise Conflict("This test was already handed in.")
    units = Unit.objects.in_bulk(attempt.unit_ids)
    correct = 0
    stored = {}
    for unit_id in attempt.unit_ids:
        word, category = answers.get(unit_id, ("", ""))
        word = clean_word(word)[:WORD_MAX]  # the page's field says it takes no more
        unit = units.get(unit_id)
        word_ok, category_ok = (False, False) if unit is None else gold_parts(
            word=word, category=category, gold_word=unit.gold_word, gold_category=unit.gold_category
        )
        ok = word_ok and category_ok
        correct += ok
        stored[str(unit_id)] = {"word": word, "category": category[:20], "correct": ok,
                                "word_ok": word_ok, "category_ok": category_ok}
    attempt.answers = stored
    attempt.correct = correct
    attempt.finished_at = now
    pass_fraction = QualificationSettings.of(attempt.project_id).pass_fraction
    attempt.passed = attempt.total > 0 and correct >= pass_fraction * attempt.total - 1e-9
    attempt.save(update_fields=["answers", "correct", "finished_at", "passed"])
    if attempt.passed:
        annotator_qualify(user=attempt.user, project=attempt.project)
    return attempt
