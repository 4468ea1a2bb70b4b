"""Celery tasks (sanity). Pass ids, fetch rows inside the task."""
from celery import shared_task


# The experiment trains networks, so it goes to the compute queue like dissection jobs.
# Idempotent: sanity_report_run claims a pending/failed row and leaves a running or finished one.
@shared_task(name="tasks.sanity.run_sanity_report", acks_late=True, queue="gpu")
def run_sanity_report(report_id: int) -> None:
    from units.sanity.services import sanity_report_run

    sanity_report_run(report_id=report_id)
