"""Reads of the crowd side: what a HIT shows, an annotator's record, the review queues."""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal
from typing import cast

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db.models import Avg, Count, DateTimeField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.urls import reverse
from django.utils import timezone

from annotate_site.plainsql import Table, fetch_all
from annotate_site.roles import REQUESTERS_GROUP
from units.dissection.models import Exemplar

from .models import Annotation, Assignment, Hit, Qualification, QualificationAttempt

QUALIFICATION_EXEMPLARS = 10  # pictures shown per unit in the qualification test


def hit_exemplars(hit: Hit) -> list[Exemplar]:
    """The pictures of a HIT: its unit's top exemplars, with the batch's sentinels mixed in.

    Sentinel positions come from a generator seeded by the HIT id, so every page load (and the
    server's check of the answer) sees the same order, and annotators cannot learn "last = sentinel".
    """
    # A verify batch's sentinels are whole HITs with a wrong label, not pictures mixed into a strip.
    n_sentinels = hit.batch.sentinels if hit.batch_id and hit.kind == "label" else 0
    top, sentinels = _exemplars(hit.unit_id, hit.exemplars_shown, n_sentinels)
    if not n_sentinels:
        return top
    rng = random.Random(hit.pk)
    shown = list(top)
    for sentinel in sentinels:
        shown.insert(rng.randint(0, len(shown)), sentinel)
    return shown


_EXEMPLAR = Table(Exemplar, "e")


def _exemplars(unit_id: int, top: int, sentinels: int) -> tuple[list[Exemplar], list[Exemplar]]:
    """A unit's first `top` top exemplars and first `sentinels` sentinels, by rank: for each kind,
    `Exemplar.objects.filter(unit_id=unit_id, kind=kind).order_by("rank")[:limit]`, in one plain query (every
    claim and submit reads a HIT's pictures; annotate_site.plainsql)."""
    e = _EXEMPLAR
    one = f"SELECT {e.columns} FROM {e.name} WHERE e.unit_id = %s AND e.kind = %s ORDER BY e.rank LIMIT %s"
    wanted = [(kind, limit) for kind, limit in ((Exemplar.Kind.TOP, top), (Exemplar.Kind.SENTINEL, sentinels))
              if limit > 0]
    if not wanted:
        return [], []
    sql = " UNION ALL ".join(f"SELECT * FROM ({one}) k{i}" for i in range(len(wanted)))
    rows = fetch_all(sql, [value for kind, limit in wanted for value in (unit_id, kind, int(limit))])
    loaded = [cast(Exemplar, e.load(row)[0]) for row in rows]
    by_rank = sorted(loaded, key=lambda ex: ex.rank)  # UNION ALL keeps no order of its own
    return ([ex for ex in by_rank if ex.kind == Exemplar.Kind.TOP],
            [ex for ex in by_rank if ex.kind == Exemplar.Kind.SENTINEL])


@dataclass(frozen=True)
class ShownPicture:
    """A picture as an annotator gets it: `pk` is the exemplar's random public id (form values and API
    ids), the URLs are opaque. Nothing in it, nor in the order of the ids, tells a sentinel apart."""

    pk: str
    picture_url: str
    plain_url: str
    exemplar_id: int  # server side only: never rendered for annotators


def shown_pictures(exemplars) -> list[ShownPicture]:
    return [
        ShownPicture(pk=ex.public_id, exemplar_id=ex.pk,
                     picture_url=reverse("picture", args=[ex.public_id]),
                     plain_url=reverse("picture_plain", args=[ex.public_id]))
        for ex in exemplars
    ]


def hit_pictures(hit: Hit) -> list[ShownPicture]:
    return shown_pictures(hit_exemplars(hit))


def qualification_exemplars(unit_id: int) -> QuerySet[Exemplar]:
    return Exemplar.objects.filter(unit_id=unit_id, kind=Exemplar.Kind.TOP).order_by("rank")[:QUALIFICATION_EXEMPLARS]


def picture_visible_to(user: User, exemplar: Exemplar) -> bool:
    """Annotators see exactly the pictures of HITs they hold or held and of their qualification tests."""
    hits = Hit.objects.filter(unit_id=exemplar.unit_id, assignments__worker=user).select_related("batch").distinct()
    if any(exemplar.pk in {ex.pk for ex in hit_exemplars(hit)} for hit in hits):
        return True
    attempts = QualificationAttempt.objects.filter(user=user).values_list("unit_ids", flat=True)
    if any(exemplar.unit_id in (unit_ids or []) for unit_ids in attempts):
        return exemplar.pk in {ex.pk for ex in qualification_exemplars(exemplar.unit_id)}
    return False


# Gold feedback must not say which HIT was gold (an annotator who knows would answer gold HITs with
# care and the rest carelessly). So the figure covers only submissions at least GOLD_FEEDBACK_DELAY
# old, cut at a multiple of GOLD_FEEDBACK_STEP: it can change only every STEP-th submission, whatever
# was gold, and then says "some of those STEP HITs were gold", never which. Nothing is shown before
# GOLD_FEEDBACK_MIN gold answers are counted.
GOLD_FEEDBACK_DELAY = 10
GOLD_FEEDBACK_STEP = 10
GOLD_FEEDBACK_MIN = 5


@dataclass(frozen=True)
class AnnotatorStats:
    submitted: int  # everything handed in, whatever the review said
    pending: int
    approved: int
    rejected: int
    gold_answered: int  # counted gold answers only: delayed, in steps (see above)
    gold_correct: int
    earned: Decimal

    gold_delay = GOLD_FEEDBACK_DELAY
    gold_step = GOLD_FEEDBACK_STEP

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold_correct / self.gold_answered if self.gold_answered else None


def gold_feedback(outcomes: list[bool | None]) -> tuple[int, int]:
    """(answered, correct) to show, from the gold outcome of each submission in submission order
    (None: not a gold HIT)."""
    counted = max(0, len(outcomes) - GOLD_FEEDBACK_DELAY) // GOLD_FEEDBACK_STEP * GOLD_FEEDBACK_STEP
    golds = [ok for ok in outcomes[:counted] if ok is not None]
    if len(golds) < GOLD_FEEDBACK_MIN:
        return 0, 0
    return len(golds), sum(golds)


def annotator_stats(user: User) -> AnnotatorStats:
    S = Assignment.Status
    counts = Assignment.objects.filter(worker=user).aggregate(
        pending=Count("pk", filter=Q(status=S.SUBMITTED)),
        approved=Count("pk", filter=Q(status=S.APPROVED)),
        rejected=Count("pk", filter=Q(status=S.REJECTED)),
        earned=Sum("hit__reward", filter=Q(status=S.APPROVED)),
    )
    outcomes = list(Annotation.objects.filter(assignment__worker=user)
                    .order_by("created_at", "pk").values_list("gold_correct", flat=True))
    answered, correct = gold_feedback(outcomes)
    return AnnotatorStats(
        submitted=counts["pending"] + counts["approved"] + counts["rejected"],
        pending=counts["pending"], approved=counts["approved"], rejected=counts["rejected"],
        gold_answered=answered, gold_correct=correct,
        earned=counts["earned"] or Decimal("0.00"),
    )


def annotator_recent_work(user: User, limit: int = 20) -> QuerySet[Assignment]:
    return (Assignment.objects.filter(worker=user).exclude(status=Assignment.Status.ACCEPTED)
            .select_related("hit__unit__layer", "hit__batch__project", "annotation").order_by("-accepted_at")[:limit])


def annotator_current(user: User) -> Assignment | None:
    return (Assignment.objects.filter(worker=user, status=Assignment.Status.ACCEPTED, deadline__gt=timezone.now())
            .select_related("hit").first())


def hits_for_review() -> QuerySet[Hit]:
    """HITs with work handed in, those waiting for a decision first."""
    S = Assignment.Status
    return (Hit.objects.select_related("unit__layer__job__network", "batch")
            .annotate(waiting=Count("assignments", filter=Q(assignments__status=S.SUBMITTED)),
                      approved=Count("assignments", filter=Q(assignments__status=S.APPROVED)),
                      rejected=Count("assignments", filter=Q(assignments__status=S.REJECTED)))
            .filter(Q(waiting__gt=0) | Q(approved__gt=0) | Q(rejected__gt=0))
            .order_by("-waiting", "pk"))


def hit_assignments_for_review(hit: Hit) -> QuerySet[Assignment]:
    return (hit.assignments.exclude(status__in=[Assignment.Status.ABANDONED, Assignment.Status.RETURNED])
            .select_related("worker", "worker__annotator_profile", "annotation")
            .prefetch_related("annotation__non_fitting").order_by("pk"))


def annotators_overview(project=None) -> QuerySet:
    """Every user who is not a requester, with their crowd record, for the requesters' annotators page;
    `qualified_at`: when they qualified for `project` (None: not qualified, or no project given)."""
    S = Assignment.Status
    qualified = Qualification.objects.filter(user=OuterRef("pk"), project=project).values("qualified_at")[:1]
    return (get_user_model().objects.filter(is_staff=False).exclude(groups__name=REQUESTERS_GROUP)
            .select_related("annotator_profile")
            .annotate(qualified_at=Subquery(qualified) if project is not None else Value(None,
                                                                                       DateTimeField()))
            .annotate(n_submitted=Count("assignments",
                                        filter=Q(assignments__status__in=[S.SUBMITTED, S.APPROVED, S.REJECTED])),
                      n_approved=Count("assignments", filter=Q(assignments__status=S.APPROVED)),
                      n_rejected=Count("assignments", filter=Q(assignments__status=S.REJECTED)))
            .order_by("username"))


def annotators_quality(user_ids: list[int], project) -> dict[int, dict]:
    """Per worker, from their answers in `project` only (a requester sees nothing of other projects' work):
    gold accuracy, share of sentinels caught, mean time per HIT, and the published model's skill when its
    last run was one of this project's (read through the user's `skill` relation); None where not known."""
    answer = "assignments__annotation"
    # Outside answers count once their marketplace confirmed them as this worker's (units/crowd/confirmation.py).
    here = (Q(assignments__hit__batch__project=project) & ~Q(assignments__status=Assignment.Status.PENDING)
            & ~Q(assignments__external_status=Assignment.VOID))
    rows = (get_user_model().objects.filter(pk__in=user_ids)
            .annotate(gold=Count(answer, filter=here & Q(**{f"{answer}__gold_correct__isnull": False})),
                      gold_ok=Count(answer, filter=here & Q(**{f"{answer}__gold_correct": True})),
                      shown=Sum(f"{answer}__sentinels_shown", filter=here),
                      missed=Sum(f"{answer}__sentinels_missed", filter=here),
                      seconds=Avg("assignments__work_seconds", filter=here))
            .values("pk", "gold", "gold_ok", "shown", "missed", "seconds", "skill__skill", "skill__run__project_id"))
    return {r["pk"]: {"gold_accuracy": r["gold_ok"] / r["gold"] if r["gold"] else None,
                      "sentinel_hits": (r["shown"] - r["missed"]) / r["shown"] if r["shown"] else None,
                      "skill": r["skill__skill"] if r["skill__run__project_id"] == project.pk else None,
                      "seconds": r["seconds"]} for r in rows}


def assignment_retakable(assignment: Assignment, *, now=None) -> bool:
    """Whether the expiry page may offer "Take this HIT again" (a hint: `assignment_retake` decides under locks)."""
    now = now or timezone.now()
    expired = (assignment.status == Assignment.Status.ABANDONED
               or (assignment.status == Assignment.Status.ACCEPTED and assignment.deadline <= now))
    hit = assignment.hit
    if not expired or hit.status == Hit.Status.DISPOSED or hit.expires_at <= now:
        return False
    held = (hit.assignments.filter(status__in=Assignment.SLOT_STATUSES)
            .exclude(status=Assignment.Status.ACCEPTED, deadline__lte=now).count())
    return held < hit.max_assignments


def annotator_earnings_by_project(user) -> list[dict]:
    """What the annotator earned (approved work) and handed in, per project, for their start page."""
    S = Assignment.Status
    return list(Assignment.objects.filter(worker=user, status__in=[S.SUBMITTED, S.APPROVED, S.REJECTED])
                .values("hit__batch__project__name")
                .annotate(submitted=Count("pk"), approved=Count("pk", filter=Q(status=S.APPROVED)),
                          earned=Sum("hit__reward", filter=Q(status=S.APPROVED)))
                .order_by("hit__batch__project__name"))
