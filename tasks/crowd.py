"""Celery tasks (crowd): periodic housekeeping of the HIT queue. Idempotent; safe to run anywhere."""
from celery import shared_task


@shared_task(name="tasks.crowd.reclaim_expired_assignments")
def reclaim_expired_assignments() -> int:
    """Free the slots of assignments abandoned past their deadline (claims also do this as they look)."""
    from units.crowd.services import assignments_reclaim_expired

    return assignments_reclaim_expired()


@shared_task(name="tasks.crowd.auto_approve_assignments")
def auto_approve_assignments() -> int:
    """Approve submitted work whose HIT's auto-approval delay has passed."""
    from units.crowd.review import assignments_auto_approve

    return assignments_auto_approve()


@shared_task(name="tasks.crowd.mturk_publish_batch", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mturk_publish_batch(batch_id: int) -> str:
    """Create a batch's HIT type and HITs on MTurk (idempotent: a retry never creates a second HIT)."""
    from units.crowd.models import HitBatch
    from units.crowd.mturk import batch_publish_mturk

    return str(batch_publish_mturk(HitBatch.objects.get(pk=batch_id)))


@shared_task(name="tasks.crowd.mturk_sync")
def mturk_sync() -> str:
    """Read submitted assignments of every MTurk batch still open and match them to the stored answers."""
    from units.crowd.mturk import mturk_sync_open_batches

    return mturk_sync_open_batches()


@shared_task(name="tasks.crowd.outside_confirm")
def outside_confirm(assignment_id: int, tries: int = 0) -> str:
    """Ask MTurk or Prolific whether a pending answer is theirs (units/crowd/confirmation.py); while they do not
    know yet, ask again after the next of the growing waits."""
    from annotate_site.celery import enqueue_in
    from units.crowd.external_work import CONFIRM_WAITS, outside_answer_check

    outcome = outside_answer_check(assignment_id)
    if outcome == "wait" and tries + 1 < len(CONFIRM_WAITS):
        enqueue_in(CONFIRM_WAITS[tries + 1], "tasks.crowd.outside_confirm", assignment_id, tries + 1)
    return outcome


@shared_task(name="tasks.crowd.mturk_qualify", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mturk_qualify(project_id: int, channel: str, worker_id: str) -> str:
    """Grant a worker who passed the project's qualification test its qualification type on MTurk."""
    from units.crowd.mturk import worker_qualify

    return worker_qualify(project_id, channel, worker_id)


@shared_task(name="tasks.crowd.mturk_push_reviews", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mturk_push_reviews(assignment_ids: list[int]) -> int:
    """Tell MTurk the decisions taken on the review page (status-checked: a retry does nothing twice)."""
    from units.crowd.mturk import mturk_push_reviews as push

    return push(assignment_ids)


@shared_task(name="tasks.crowd.mturk_block", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mturk_block(project_id: int, channel: str, worker_id: str, reason: str) -> None:
    """Block a worker on MTurk (blocking twice is harmless there)."""
    from units.crowd.mturk import mturk_client, worker_block

    worker_block(mturk_client(project_id, channel), worker_id, reason)


@shared_task(name="tasks.crowd.mturk_bonus", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mturk_bonus(assignment_id: int, amount: str, reason: str) -> None:
    """Pay a bonus on MTurk; its UniqueRequestToken makes a retry pay nothing twice."""
    from decimal import Decimal

    from units.crowd.models import Assignment
    from units.crowd.mturk import worker_bonus

    from django.utils import timezone

    from units.crowd.models import BonusPayment

    assignment = Assignment.objects.select_related("hit__batch", "worker").get(pk=assignment_id)
    worker_bonus(assignment, amount=Decimal(amount), reason=reason)
    BonusPayment.objects.filter(assignment=assignment, paid_at__isnull=True).update(paid_at=timezone.now())


@shared_task(name="tasks.crowd.mturk_expire_batch", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def mturk_expire_batch(batch_id: int) -> int:
    """Expire a batch's HITs on MTurk (expiring twice is harmless there)."""
    from units.crowd.models import HitBatch
    from units.crowd.mturk import batch_expire_mturk

    return batch_expire_mturk(HitBatch.objects.get(pk=batch_id))


@shared_task(name="tasks.crowd.prolific_push_review", autoretry_for=(Exception,), retry_backoff=True, max_retries=5)
def prolific_push_review(project_id: int, session_id: str) -> str:
    """Approve or reject a Prolific submission once all its answers are decided (status-checked)."""
    from units.crowd.prolific import submission_push_review

    return submission_push_review(project_id=project_id, session_id=session_id)


@shared_task(name="tasks.crowd.prolific_bonus")
def prolific_bonus(bonus_id: int) -> None:
    """Pay a Prolific bonus at most once (no retry: Prolific's pay call is not idempotent)."""
    from units.crowd.models import BonusPayment
    from units.crowd.prolific import bonus_pay

    bonus_pay(BonusPayment.objects.select_related("assignment__hit__batch").get(pk=bonus_id))
