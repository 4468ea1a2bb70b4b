"""A project's quality rule against spammers, and the per-worker quality the annotators page shows.

A worker's checks are the answers whose right answer is known when they hand them in: gold HITs (the word
and category must match) and sentinels (low-activation pictures that must be marked as not fitting). Their
pass rate is passed checks / checks. With a rule set (ChannelSettings.quality_min_pass_rate), a worker below
it once they gave `quality_min_answers` answers in the project is blocked (site-wide, as the annotators page
blocks; an MTurk worker on MTurk too, so MTurk stops offering them the HITs), and their work in the project
still waiting for review is rejected with that reason (which MTurk and Prolific then hear of; on Prolific
as a failed attention check). Dawid-Skene skill is shown beside, but the rule does not use it: it is only
known after an aggregation run, and a spammer would be blocked late.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import Count, Q, Sum

from annotate_site.celery import enqueue

from .annotators import annotator_block, profile_get
from .channels import MTURK_CHANNELS
from .models import Annotation, Assignment, ChannelSettings
from .quality_rule import CheckRecord, QualityRule
from .review import assignments_review


def worker_checks(*, worker_id: int, project_id: int) -> CheckRecord:
    # An outside answer its marketplace has not confirmed, or found not to be this worker's, is no check of
    # theirs (units/crowd/confirmation.py): a made-up worker id must not block a real worker.
    row = Annotation.objects.filter(assignment__worker_id=worker_id,
                                    assignment__hit__batch__project_id=project_id).exclude(
        assignment__status=Assignment.Status.PENDING).exclude(assignment__external_status=Assignment.VOID).aggregate(
        answers=Count("pk"), gold=Count("pk", filter=Q(gold_correct__isnull=False)),
        gold_ok=Count("pk", filter=Q(gold_correct=True)), shown=Sum("sentinels_shown"),
        missed=Sum("sentinels_missed"))
    shown, missed = row["shown"] or 0, row["missed"] or 0
    return CheckRecord(answers=row["answers"], checks=row["gold"] + shown, passed=row["gold_ok"] + shown - missed)


def project_rule(project_id: int) -> QualityRule | None:
    row = (ChannelSettings.objects.filter(project_id=project_id, quality_min_pass_rate__isnull=False)
           .values("quality_min_pass_rate", "quality_min_answers").first())
    return QualityRule(row["quality_min_pass_rate"], row["quality_min_answers"]) if row else None


def quality_rule_apply(*, worker, project_id: int, rule: QualityRule | None | bool = True) -> bool:
    """Apply the project's rule to `worker` after an answer; True when it blocked them just now.

    `rule`: the project's rule (or None) when the caller read it already (the submit reads it with the
    assignment it locks, so a project without a rule costs nothing more); True reads it here."""
    if rule is True:
        rule = project_rule(project_id)
    if not isinstance(rule, QualityRule):
        return False
    with transaction.atomic():
        return _rule_apply(worker=worker, project_id=project_id, rule=rule)


def _rule_apply(*, worker, project_id: int, rule: QualityRule) -> bool:
    if profile_get(worker).is_blocked:
        return False
    record = worker_checks(worker_id=worker.pk, project_id=project_id)
    if not rule.blocks(record):
        return False
    reason = (f"failed {record.checks - record.passed} of {record.checks} quality checks "
              f"(the project asks for {rule.min_pass_rate:.0%})")
    annotator_block(user=worker, reason=reason)
    pending = list(Assignment.objects.filter(worker=worker, hit__batch__project_id=project_id,
                                             status=Assignment.Status.SUBMITTED).values_list("pk", flat=True))
    if pending:
        assignments_review(assignment_ids=pending, approve=False, feedback=f"Your answers {reason}.")
    if worker.username.startswith("mturk-"):
        targets = set(Assignment.objects.filter(worker=worker, hit__batch__project_id=project_id,
                                                hit__batch__channel__in=MTURK_CHANNELS)
                      .values_list("hit__batch__channel", flat=True))
        for channel in sorted(targets):
            transaction.on_commit(lambda c=channel: enqueue(
                "tasks.crowd.mturk_block", project_id, c, worker.username.removeprefix("mturk-"), reason))
    return True
