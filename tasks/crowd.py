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
