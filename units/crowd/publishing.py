"""Publishing: the units of chosen layers become HITs (one per unit, never two).

Owned by the platform (it decides which units are worth labelling); the crowd app takes the
HITs from here. `Hit` has a unique constraint on its unit, so publishing is idempotent: units
that already have a HIT are skipped and counted, and a concurrent publish of the same layer
cannot create a second HIT (the constraint rejects it; we skip on that conflict too).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Prefetch
from django.utils import timezone

from units.dissection.models import DissectionJob, Exemplar, Layer, Unit

from units.projects.models import Activity, Pool
from units.projects.services import activity_record

from annotate_site.celery import enqueue

from .channels import MTURK_CHANNELS, budget_enforce, channel_publish_check
from .errors import PublishError
from .models import Channel, Hit, HitBatch, HitKind


@dataclass(frozen=True)
class PublishReport:
    batch: HitBatch
    created: int
    skipped_existing: int
    skipped_dead: int
    skipped_without_exemplars: int

    def __str__(self) -> str:
        return (
            f"{self.created} HIT(s) created" + (f" in batch {self.batch.pk}" if self.batch.pk else "")
            + f"; skipped {self.skipped_existing} unit(s) "
            f"that already had a HIT, {self.skipped_dead} dead unit(s), "
            f"{self.skipped_without_exemplars} without exemplars"
        )


def redundancy_defaults() -> dict[str, float | int]:
    """The site's adaptive redundancy, where a batch sets none: one more answer while the label's calibrated
    probability is below `probability`, up to `cap` answers per unit (settings RESULTS_REDUNDANCY_*)."""
    return {"probability": float(getattr(settings, "RESULTS_REDUNDANCY_PROBABILITY", 0.8)),
            "cap": int(getattr(settings, "RESULTS_REDUNDANCY_CAP", 5))}


@dataclass(frozen=True)
class PublishSettings:
    """How a batch of HITs is published, labelling or verify: what a requester sets, with the defaults
    of a labelling batch (`for_verify` gives a verify batch's). `checked()` applies the rules every
    batch obeys; both publishers call it through `publish_check`, so the rules live here once."""

    assignments_per_hit: int = 3
    reward: Decimal | str | float = Decimal("0.05")
    lifetime_seconds: int = 7 * 24 * 3600
    assignment_duration_seconds: int = 15 * 60
    auto_approval_delay_seconds: int = 3 * 24 * 3600
    exemplars_shown: int = 15
    sentinels: int = 0
    skip_dead: bool = True
    name: str = ""
    channel: str = Channel.SITE  # where the workers come from (crowd.channels)
    # Adaptive redundancy (results.services) for this batch: one more answer while the label's calibrated
    # probability is below `redundancy_probability`, up to `redundancy_cap` answers per unit; None: the site's.
    redundancy_probability: float | None = None
    redundancy_cap: int | None = None

    @classmethod
    def for_verify(cls, **changes: Any) -> PublishSettings:
        """A verify batch's defaults: one yes/no answer earns less and needs less time than naming a concept."""
        return cls(**{"reward": Decimal("0.02"), "assignment_duration_seconds": 5 * 60, **changes})

    def checked(self) -> PublishSettings:
        """These settings with the reward as a 2-digit Decimal; a PublishError names the first rule broken."""
        if not 1 <= self.assignments_per_hit <= 100:
            raise PublishError("Assignments per HIT must be between 1 and 100.")
        try:
            reward = Decimal(str(self.reward)).quantize(Decimal("0.01"))
        except (InvalidOperation, ValueError):
            raise PublishError(f"The reward {self.reward!r} is not an amount like 0.05.") from None
        if reward < 0:
            raise PublishError("The reward cannot be negative.")
        if self.lifetime_seconds < 60 or self.assignment_duration_seconds < 30:
            raise PublishError("A HIT must live at least 60 s and give at least 30 s per assignment.")
        if self.auto_approval_delay_seconds < 0:
            raise PublishError("The auto-approval delay cannot be negative.")
        if not 1 <= self.exemplars_shown <= 100:
            raise PublishError("Exemplars shown must be between 1 and 100.")
        if not 0 <= self.sentinels <= 10:
            raise PublishError("Sentinels must be between 0 and 10.")
        if self.channel not in Channel.values:
            raise PublishError(f"Unknown crowd channel {self.channel!r}; choose one of {', '.join(Channel.values)}.")
        if self.redundancy_probability is not None and not 0.0 <= self.redundancy_probability <= 1.0:
            raise PublishError("The probability below which a unit gets more answers must be between 0 and 1.")
        if self.redundancy_cap is not None and not self.assignments_per_hit <= self.redundancy_cap <= 100:
            raise PublishError(f"The most answers per unit must be between the assignments per HIT "
                               f"({self.assignments_per_hit}) and 100.")
        return replace(self, reward=reward)

    def batch_fields(self) -> dict[str, Any]:
        """The HitBatch columns these settings fill."""
        return {"assignments_per_hit": self.assignments_per_hit, "reward": self.reward,
                "lifetime_seconds": self.lifetime_seconds,
                "assignment_duration_seconds": self.assignment_duration_seconds,
                "auto_approval_delay_seconds": self.auto_approval_delay_seconds,
                "exemplars_shown": self.exemplars_shown, "sentinels": self.sentinels, "channel": self.channel,
                "redundancy_probability": self.redundancy_probability, "redundancy_cap": self.redundancy_cap}

    def hit_fields(self) -> dict[str, Any]:
        """The Hit columns these settings fill, with the expiry counted from now."""
        return {"max_assignments": self.assignments_per_hit, "reward": self.reward,
                "lifetime_seconds": self.lifetime_seconds,
                "assignment_duration_seconds": self.assignment_duration_seconds,
                "auto_approval_delay_seconds": self.auto_approval_delay_seconds,
                "exemplars_shown": self.exemplars_shown,
                "expires_at": timezone.now() + timedelta(seconds=self.lifetime_seconds)}


def layers_project_id(layers: list[Layer]) -> int:
    """The one project of the layers' jobs: a batch belongs to one project, so its layers must too."""
    project_ids = set(DissectionJob.objects.filter(pk__in={layer.job_id for layer in layers})
                      .values_list("project_id", flat=True))
    if len(project_ids) != 1:
        raise PublishError("Publish the layers of one project at a time.")
    return project_ids.pop()


POOL_SITE_ONLY = "A pool holds this site's annotators: publish to an outside crowd with the open crowd."


def pool_check(pool: Pool | None, project_id: int) -> Pool | None:
    """A batch's pool must be one of its project's (None: the open crowd)."""
    if pool is not None and pool.project_id != project_id:
        raise PublishError("Choose a pool of the layers' project, or the open crowd.")
    return pool


def publish_check(layers: Iterable[Layer], settings: PublishSettings) -> tuple[list[Layer], PublishSettings]:
    """What every publishing checks first: some layers, all of finished jobs, settings within the rules.
    Returns the layers as a list and the checked settings (the reward as a Decimal)."""
    layers = list(layers)
    if not layers:
        raise PublishError("Choose at least one layer to publish.")
    # Read the status from the database: the layers may carry a stale copy of their job.
    not_done = sorted(
        DissectionJob.objects.filter(pk__in={layer.job_id for layer in layers})
        .exclude(status=DissectionJob.Status.SUCCEEDED).values_list("pk", flat=True)
    )
    if not_done:
        raise PublishError(f"Job(s) {', '.join(map(str, not_done))} have not finished; publish their layers "
                           f"afterwards.")
    return layers, settings.checked()


def publishable_units(layers: Iterable[Layer], *, skip_dead: bool = True) -> int:
    """How many label HITs `hit_publish` would create for `layers` now (units without one, with pictures)."""
    units = Unit.objects.filter(layer__in=list(layers), exemplars__kind=Exemplar.Kind.TOP).exclude(
        hits__kind=HitKind.LABEL).distinct()
    if skip_dead:
        units = units.filter(max_activation__gt=0)
    return units.count()


def hit_publish(
    *, layers: Iterable[Layer], settings: PublishSettings = PublishSettings(), created_by: User | None = None,
    pool: Pool | None = None,
) -> HitBatch:
    """Create one HIT per unit of `layers` that has none yet.

    Returns the batch with the counts attached as `batch.report` (a `PublishReport`); when no
    HIT was created the batch is not kept (its `pk` is None) and the report says why.
    """
    layers, settings = publish_check(layers, settings)
    project_id = layers_project_id(layers)
    pool = pool_check(pool, project_id)
    channel_publish_check(project_id=project_id, channel=settings.channel)
    if pool is not None and settings.channel != Channel.SITE:
        raise PublishError(POOL_SITE_ONLY)
    if settings.sentinels and not Exemplar.objects.filter(unit__layer__in=layers,
                                                          kind=Exemplar.Kind.SENTINEL).exists():
        raise PublishError(
            "These layers have no sentinel images (the job ran with UNITCROWD_SENTINELS_PER_UNIT=0); "
            "publish with 0 sentinels or re-run the job."
        )
    hit_fields = settings.hit_fields()
    skipped_existing = skipped_dead = skipped_bare = created = 0
    with transaction.atomic():
        batch = HitBatch.objects.create(
            project_id=project_id, pool=pool,
            name=settings.name or "Name what units detect: " + ", ".join(
                f"{layer.job.network.name} {layer.name}" for layer in layers),
            created_by=created_by, **settings.batch_fields(),
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
            if settings.skip_dead and unit.max_activation <= 0:
                skipped_dead += 1
                continue
            if unit.pk not in with_exemplars:
                skipped_bare += 1
                continue
            try:
                # A savepoint per HIT: a concurrent publisher that created this unit's HIT first
                # makes only this insert fail (unique constraint), not the whole batch.
                with transaction.atomic():
                    Hit.objects.create(batch=batch, unit=unit, is_gold=unit.is_gold, **hit_fields)
                created += 1
            except IntegrityError:
                skipped_existing += 1
        if not created:
            batch.delete()  # nothing new: keep no empty batch around (batch.pk is None afterwards)
        else:
            cost = budget_enforce(batch=batch, hits=created)  # a refusal rolls the HITs back
            if batch.channel in MTURK_CHANNELS:  # MTurk's HITs are made by a task, after this commit
                batch_id = batch.pk
                transaction.on_commit(lambda: enqueue("tasks.crowd.mturk_publish_batch", batch_id))
            activity_record(project=project_id, actor=created_by, verb=Activity.Verb.PUBLISHED,
                            summary=f"batch {batch.pk} ({batch.name}) on {batch.get_channel_display()}: "
                                    f"{created} label HITs" + (f", up to {cost}" if batch.is_external else ""))
    batch.report = PublishReport(batch, created, skipped_existing, skipped_dead, skipped_bare)
    return batch


@transaction.atomic
def batch_expire(*, batch: HitBatch, by: User | None = None) -> int:
    """Stop offering the batch's HITs now (work already taken may still be handed in, as on MTurk); an MTurk
    batch's HITs are expired there too, after commit. Returns how many HITs were still open."""
    now = timezone.now()
    n = batch.hits.filter(expires_at__gt=now).update(expires_at=now)
    if batch.channel in MTURK_CHANNELS and batch.hits.exclude(external_id="").exists():
        batch_id = batch.pk
        transaction.on_commit(lambda: enqueue("tasks.crowd.mturk_expire_batch", batch_id))
    activity_record(project=batch.project_id, actor=by, verb=Activity.Verb.PUBLISHED,
                    summary=f"batch {batch.pk} ({batch.name}) expired: {n} open HIT(s) closed")
    return n
