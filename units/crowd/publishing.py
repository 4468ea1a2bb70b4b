"""Publishing: the units of chosen layers become HITs (one per unit, never two).

Owned by the platform (it decides which units are worth labelling); the crowd app takes the
HITs from here. `Hit` has a unique constraint on its unit, so publishing is idempotent: units
that already have a HIT are skipped and counted, and a concurrent publish of the same layer
cannot create a second HIT (the constraint rejects it; we skip on that conflict too).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from units.dissection.models import DissectionJob, Exemplar, Layer, Unit

from .models import Hit, HitBatch, HitKind


class PublishError(Exception):
    """Publishing was refused; the message says why and what to change."""


@dataclass(frozen=True)
class PublishReport:
    batch: HitBatch
    created: int
    skipped_existing: int
    skipped_dead: int
    skipped_without_exemplars: int

    def __str__(self) -> str:
        return (
            f"{self.created} HIT(s) created" + (f" in batch {self.batch.pk}" if self.batch.pk else "") + f"; skipped {self.skipped_existing} unit(s) "
            f"that already had a HIT, {self.skipped_dead} dead unit(s), "
            f"{self.skipped_without_exemplars} without exemplars"
        )


def publish_options_check(*, assignments_per_hit: int, reward, lifetime_seconds: int,
                          assignment_duration_seconds: int, auto_approval_delay_seconds: int, exemplars_shown: int,
                          sentinels: int) -> Decimal:
    """The rules every batch obeys (labelling or verify); returns the reward as a 2-digit Decimal."""
    if not 1 <= assignments_per_hit <= 100:
        raise PublishError("Assignments per HIT must be between 1 and 100.")
    try:
        reward = Decimal(str(reward)).quantize(Decimal("0.01"))
    except (InvalidOperation, ValueError):
        raise PublishError(f"The reward {reward!r} is not an amount like 0.05.") from None
    if reward < 0:
        raise PublishError("The reward cannot be negative.")
    if lifetime_seconds < 60 or assignment_duration_seconds < 30:
        raise PublishError("A HIT must live at least 60 s and give at least 30 s per assignment.")
    if auto_approval_delay_seconds < 0:
        raise PublishError("The auto-approval delay cannot be negative.")
    if not 1 <= exemplars_shown <= 100:
        raise PublishError("Exemplars shown must be between 1 and 100.")
    if not 0 <= sentinels <= 10:
        raise PublishError("Sentinels must be between 0 and 10.")
    return reward


def hit_publish(
    *,
    layers: Iterable[Layer],
    assignments_per_hit: int = 3,
    reward: Decimal | str | float = Decimal("0.05"),
    lifetime_seconds: int = 7 * 24 * 3600,
    assignment_duration_seconds: int = 15 * 60,
    auto_approval_delay_seconds: int = 3 * 24 * 3600,
    exemplars_shown: int = 15,
    sentinels: int = 0,
    skip_dead: bool = True,
    created_by=None,
    name: str = "",
) -> HitBatch:
    """Create one HIT per unit of `layers` that has none yet.

    Returns the batch with the counts attached as `batch.report` (a `PublishReport`); when no
    HIT was created the batch is not kept (its `pk` is None) and the report says why.
    """
    layers = list(layers)
    if not layers:
        raise PublishError("Choose at least one layer to publish.")
    # Read the status from the database: the layers may carry a stale copy of their job.
    not_done = sorted(
        DissectionJob.objects.filter(pk__in={layer.job_id for layer in layers})
        .exclude(status=DissectionJob.Status.SUCCEEDED).values_list("pk", flat=True)
    )
    if not_done:
        raise PublishError(f"Job(s) {', '.join(map(str, not_done))} have not finished; publish their layers afterwards.")
    reward = publish_options_check(
        assignments_per_hit=assignments_per_hit, reward=reward, lifetime_seconds=lifetime_seconds,
        assignment_duration_seconds=assignment_duration_seconds,
        auto_approval_delay_seconds=auto_approval_delay_seconds, exemplars_shown=exemplars_shown, sentinels=sentinels,
    )
    if sentinels and not Exemplar.objects.filter(unit__layer__in=layers, kind=Exemplar.Kind.SENTINEL).exists():
        raise PublishError(
            "These layers have no sentinel images (the job ran with UNITCROWD_SENTINELS_PER_UNIT=0); "
            "publish with 0 sentinels or re-run the job."
        )
    now = timezone.now()
    expires_at = now + timedelta(seconds=lifetime_seconds)
    skipped_existing = skipped_dead = skipped_bare = created = 0
    with transaction.atomic():
        batch = HitBatch.objects.create(
            name=name or "Name what units detect: " + ", ".join(
                f"{layer.job.network.name} {layer.name}" for layer in layers),
            assignments_per_hit=assignments_per_hit, reward=reward, lifetime_seconds=lifetime_seconds,
            assignment_duration_seconds=assignment_duration_seconds,
            auto_approval_delay_seconds=auto_approval_delay_seconds, exemplars_shown=exemplars_shown,
            sentinels=sentinels, created_by=created_by,
        )
        batch.layers.set(layers)
        units = (
            Unit.objects.filter(layer__in=layers).order_by("layer_id", "index")
            .prefetch_related(Prefetch("hits", queryset=Hit.objects.filter(kind=HitKind.LABEL)))
            .only("id", "max_activation", "is_gold", "layer_id", "index")
        )
        with_exemplars = set(
            Exemplar.objects.filter(unit__layer__in=layers, kind=Exemplar.Kind.TOP).values_list("unit_id", flat=True)
        )
        for unit in units:
            if unit.hits.all():
                skipped_existing += 1
                continue
            if skip_dead and unit.max_activation <= 0:
                skipped_dead += 1
                continue
            if unit.pk not in with_exemplars:
                skipped_bare += 1
                continue
            try:
                # A savepoint per HIT: a concurrent publisher that created this unit's HIT first
                # makes only this insert fail (unique constraint), not the whole batch.
                with transaction.atomic():
                    Hit.objects.create(
                        batch=batch, unit=unit, max_assignments=assignments_per_hit, reward=reward,
                        lifetime_seconds=lifetime_seconds, assignment_duration_seconds=assignment_duration_seconds,
                        auto_approval_delay_seconds=auto_approval_delay_seconds, exemplars_shown=exemplars_shown,
                        is_gold=unit.is_gold, expires_at=expires_at,
                    )
                created += 1
            except IntegrityError:
                skipped_existing += 1
        if not created:
            batch.delete()  # nothing new: keep no empty batch around (batch.pk is None afterwards)
    batch.report = PublishReport(batch, created, skipped_existing, skipped_dead, skipped_bare)
    return batch
