"""Rows for results tests: answers to HITs created directly (the crowd's submit flow is tested elsewhere)."""
from datetime import timedelta

from django.utils import timezone

from units.crowd.models import Annotation, Assignment, Hit
from units.dissection.models import Exemplar


def answer(hit: Hit, worker, word: str, category: str, *, non_fitting: tuple[int, ...] = (),
           status: str = Assignment.Status.SUBMITTED, seconds: float = 60.0, description: str = "",
           confidence: int | None = 4) -> Annotation:
    """One assignment of `hit` by `worker`, submitted with this answer; non_fitting = top exemplar ranks."""
    now = timezone.now()
    assignment = Assignment.objects.create(
        hit=hit, worker=worker, status=status, accepted_at=now - timedelta(seconds=seconds),
        deadline=now + timedelta(minutes=10), submitted_at=now, work_seconds=seconds,
        approved_at=now if status == Assignment.Status.APPROVED else None,
        rejected_at=now if status == Assignment.Status.REJECTED else None,
        feedback="too vague" if status == Assignment.Status.REJECTED else "",
    )
    annotation = Annotation.objects.create(
        assignment=assignment, word=word, category=category, description=description, confidence=confidence,
    )
    if non_fitting:
        annotation.non_fitting.set(Exemplar.objects.filter(unit=hit.unit, kind="top", rank__in=non_fitting))
    return annotation


def verify_answer(hit: Hit, worker, verdict: str, *, status: str = Assignment.Status.SUBMITTED) -> Annotation:
    """One assignment of the verify HIT `hit` by `worker`, answered yes / no / unsure."""
    now = timezone.now()
    assignment = Assignment.objects.create(
        hit=hit, worker=worker, status=status, accepted_at=now - timedelta(seconds=5),
        deadline=now + timedelta(minutes=5), submitted_at=now, work_seconds=5.0,
        rejected_at=now if status == Assignment.Status.REJECTED else None,
    )
    return Annotation.objects.create(assignment=assignment, verdict=verdict, word="", category="")
