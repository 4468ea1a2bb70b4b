"""The qualification test: gold units whose concept is known; pass by matching enough of them."""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from units.dissection.models import Unit

from .annotators import annotator_qualify, profile_get
from .errors import Conflict, CrowdError
from .models import CrowdSettings, QualificationAttempt
from .validation import WORD_MAX, clean_word, gold_parts


def mark_qualified(user: User, *, by: User | None = None) -> None:
    """Qualify a user without the test (tests, the demo, a requester's decision)."""
    annotator_qualify(user=user, by=by)


def gold_units() -> QuerySet[Unit]:
    """Units usable in the test: gold, with a known category and at least one exemplar."""
    return (Unit.objects.filter(is_gold=True).exclude(gold_category="")
            .filter(exemplars__kind="top").distinct().select_related("layer"))


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
# units; each further failure waits longer, up to the settings' qualification_cooldown_minutes:
# 2, 8, 32 minutes, then the cap (60 by default).
FIRST_RETAKE_MINUTES = 2
RETAKE_GROWTH = 4


def retake_wait(failures: int, cap_minutes: int) -> timedelta:
    """How long to wait after the `failures`-th failed attempt in a row."""
    if failures <= 0:
        return timedelta(0)
    return timedelta(minutes=min(cap_minutes, FIRST_RETAKE_MINUTES * RETAKE_GROWTH ** (failures - 1)))


def qualification_state(user: User, *, now: datetime | None = None) -> QualificationState:
    now = now or timezone.now()
    profile = profile_get(user)
    finished = QualificationAttempt.objects.filter(user=user, finished_at__isnull=False)
    last = finished.first()
    retake_at = None
    if last is not None and not last.passed:
        failures = 0
        for passed in finished.values_list("passed", flat=True)[:10]:  # newest first
            if passed:
                break
            failures += 1
        wait = retake_wait(failures, CrowdSettings.load().qualification_cooldown_minutes)
        if last.finished_at + wait > now:
            retake_at = last.finished_at + wait
    return QualificationState(
        qualified=profile.is_qualified, no_gold_units=not gold_units().exists(),
        retake_at=retake_at, last_attempt=last,
    )


def qualification_start(*, user: User, now: datetime | None = None) -> QualificationAttempt:
    """The open attempt, or a new one over a random draw of gold units."""
    now = now or timezone.now()
    state = qualification_state(user, now=now)
    if state.qualified:
        raise Conflict("You are already qualified.")
    if state.no_gold_units:
        raise CrowdError("There are no gold units yet, so the test cannot run. A requester can qualify you by hand.")
    if state.retake_at is not None:
        raise Conflict(f"You can retake the test after {state.retake_at:%Y-%m-%d %H:%M} UTC.")
    open_attempt = QualificationAttempt.objects.filter(user=user, finished_at__isnull=True).first()
    if open_attempt is not None:
        return open_attempt
    size = CrowdSettings.load().qualification_size
    ids = list(gold_units().values_list("pk", flat=True))
    # A retake shows gold units the user has not seen yet, as far as there are enough of them.
    seen = {pk for unit_ids in QualificationAttempt.objects.filter(user=user).values_list("unit_ids", flat=True)
            for pk in (unit_ids or [])}
    fresh = [pk for pk in ids if pk not in seen]
    chosen = random.sample(fresh, min(size, len(fresh)))
    if len(chosen) < size:
        rest = [pk for pk in ids if pk not in chosen]
        chosen += random.sample(rest, min(size - len(chosen), len(rest)))
    return QualificationAttempt.objects.create(user=user, unit_ids=chosen, started_at=now)


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
    pass_fraction = CrowdSettings.load().qualification_pass_fraction
    attempt.passed = attempt.total > 0 and correct >= pass_fraction * attempt.total - 1e-9
    attempt.save(update_fields=["answers", "correct", "finished_at", "passed"])
    if attempt.passed:
        annotator_qualify(user=attempt.user)
    return attempt
