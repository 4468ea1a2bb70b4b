"""Outside crowds' answers count only once the marketplace confirms them.

The MTurk HIT page learns who the worker is and which assignment they hold from its URL's parameters, which
come from the worker's browser: anyone can make them up. So an answer stored from that page (or from a
Prolific study page, whose SESSION_ID is as easy to make up) waits as `pending`: it holds its HIT's slot,
but is held out of aggregation, of the quality figures and rule, and of review. It becomes `submitted` when
the marketplace shows the same piece of work for the same worker (MTurk: GetAssignment says the assignment
is of this HIT and this worker, and was submitted; Prolific: the submission is of this study and
participant), and is void (rejected here, `external_status` "Void", never sent to the marketplace, whose
assignment, if any, is someone else's) when the marketplace says it belongs to another HIT, study or worker.

The check runs shortly after the answer is stored (`tasks.crowd.outside_confirm`, retried with growing
waits while the marketplace has not yet heard of it); the periodic MTurk sync confirms what it lists and
voids what MTurk still does not list once a whole assignment duration has passed.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from .annotators import annotator_flag, profile_get
from .models import Annotation, Assignment
from .quality import quality_rule_apply
from .review import assignments_review
from .slots import hit_sync_status

VOID = Assignment.VOID


@transaction.atomic
def outside_answer_confirm(assignment_id: int, *, external_status: str) -> bool:
    """The marketplace confirmed this pending answer: it counts from now on (aggregation is scheduled by the
    status change), its sentinels and the project's quality rule apply. False when it was not pending."""
    assignment = (Assignment.objects.select_for_update().select_related("hit__batch", "worker")
                  .filter(pk=assignment_id, status=Assignment.Status.PENDING).first())
    if assignment is None:
        return False
    assignment.status, assignment.external_status = Assignment.Status.SUBMITTED, external_status[:20]
    assignment.save(update_fields=["status", "external_status"])
    worker, project_id = assignment.worker, assignment.hit.batch.project_id
    annotation = Annotation.objects.filter(assignment=assignment).only("sentinels_missed").first()
    if annotation is not None and annotation.sentinels_missed:
        annotator_flag(user=worker, reason=f"missed {annotation.sentinels_missed} sentinel check(s) in "
                                           f"assignment {assignment.pk}")
    if profile_get(worker).is_blocked:  # blocked while this answer waited: it goes the way of their other work
        assignments_review(assignment_ids=[assignment.pk], approve=False,
                           feedback="You were blocked from this requester's work.")
    else:
        quality_rule_apply(worker=worker, project_id=project_id)
    return True


def outside_answer_void(assignment_id: int, *, reason: str, now: datetime | None = None) -> bool:
    """The marketplace says this pending answer is not what it claims: it never counts, and its slot reopens."""
    now = now or timezone.now()
    with transaction.atomic():
        voided = Assignment.objects.filter(pk=assignment_id, status=Assignment.Status.PENDING).update(
            status=Assignment.Status.REJECTED, rejected_at=now, feedback=reason[:1000], external_status=VOID)
        if voided:
            hit_sync_status(Assignment.objects.select_related("hit").get(pk=assignment_id).hit, now=now)
    return bool(voided)
