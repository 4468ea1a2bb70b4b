"""Verify HITs (Network Dissection's human check, CVPR 2017): publish them, and record their yes/no answers.

A verify HIT shows a unit's top exemplars and one proposed label (the IoU label, the crowd's
aggregated label or a requester's) and asks "does this label describe most highlighted regions?".
They follow the labelling HITs' rules (redundancy, qualification, review, payment): they are `Hit`
rows with `kind="verify"`, claimed through the same queue. Quality control:

- gold: on a unit whose concept is known (mixture ground truth, `Unit.is_gold`), the right answer
  is "yes" when the label names that concept and "no" otherwise;
- sentinels: extra verify HITs whose label was chosen not to fit (a concept outside the unit's
  best IoU concepts, its gold word and its crowd word); a "yes" flags the annotator, like a
  low-activation image left unmarked in a labelling HIT.
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.utils import timezone

from units.dissection.models import Concept, Exemplar, Layer, Unit

from units.projects.models import Activity, Pool
from annotate_site.celery import enqueue
from units.projects.services import activity_record

from .annotators import annotator_flag
from .errors import Conflict, InvalidAnswer, NotAllowed, NotFound, PublishError
from .models import VERDICT_CHOICES, Annotation, Assignment, Channel, Hit, HitBatch, HitKind, LabelSource
from .channels import MTURK_CHANNELS, budget_enforce, channel_publish_check
from .publishing import POOL_SITE_ONLY, PublishSettings, layers_project_id, pool_check, publish_check
from .services import label_answers_by
from .slots import hit_sync_status
from .validation import gold_alternatives, normalise_word

VERDICTS = [value for value, _ in VERDICT_CHOICES]
PROPOSED_SOURCES = (LabelSource.IOU, LabelSource.CROWD, LabelSource.REQUESTER)
LABEL_MAX = 200
# Broden's released names carry "-s" (scene) / "-c" (color); annotators should see the plain word.
_BRODEN_SUFFIX = re.compile(r"-(s|c)$")


@dataclass
class VerifyPublishReport:
    batch: HitBatch
    created: dict[str, int] = field(default_factory=dict)  # per label source, sentinels included
    skipped_existing: int = 0
    skipped_no_label: int = 0
    skipped_dead: int = 0
    skipped_without_exemplars: int = 0

    def __str__(self) -> str:
        made = ", ".join(f"{n} {source}" for source, n in sorted(self.created.items())) or "none"
        return (
            f"{sum(self.created.values())} verify HIT(s) created ({made})"
            + (f" in batch {self.batch.pk}" if self.batch.pk else "")
            + f"; skipped {self.skipped_existing} that already had one, {self.skipped_no_label} unit(s) without a "
            f"label of that source, {self.skipped_dead} dead unit(s), {self.skipped_without_exemplars} without "
            f"exemplars"
        )


def display_label(label: str) -> str:
    return _BRODEN_SUFFIX.sub("", " ".join((label or "").split()))


def label_matches_gold(label: str, unit: Unit) -> bool | None:
    """Whether `label` names the gold unit's known concept; None when the unit has no known concept."""
    if not unit.is_gold:
        return None
    if unit.gold_category == "none":
        return False  # no concept: no label describes it
    if not unit.gold_word.strip():
        return None
    return normalise_word(display_label(label)) in gold_alternatives(unit.gold_word)


def _proposed(unit: Unit, source: str, labels: dict[int, str]) -> str:
    if source == LabelSource.IOU:
        # A best IoU at or below the interpretable threshold names no detector: the unit is unlabelled by IoU,
        # and asking people whether that concept describes its regions only collects "no"s.
        return display_label(unit.iou_label) if unit.is_interpretable_by_iou else ""
    if source == LabelSource.CROWD:
        # Read through the ORM relation of results.UnitAggregate (results sits above crowd: no import).
        return display_label(unit.crowd_word or "")
    return display_label(labels.get(unit.pk, ""))


def sentinel_label(unit: Unit, vocabulary: Sequence[str]) -> str:
    """A concept that clearly does not fit: not among the unit's best IoU concepts, not its IoU,
    gold or crowd word. Drawn with the unit id as seed, so republishing picks the same one."""
    excluded = {normalise_word(display_label(name)) for name in unit.top_concepts}
    excluded |= {normalise_word(display_label(unit.iou_label)), normalise_word(unit.crowd_word or "")}
    excluded |= gold_alternatives(unit.gold_word)
    candidates = sorted({display_label(n) for n in vocabulary if normalise_word(display_label(n)) not in excluded})
    return random.Random(unit.pk).choice(candidates) if candidates else ""


def _check_sources(sources: Iterable[str], labels: dict | None) -> tuple[list[str], dict[int, str]]:
    sources = list(dict.fromkeys(sources))
    if not sources:
        raise PublishError("Choose at least one label source to verify: iou, crowd or requester.")
    unknown = [s for s in sources if s not in PROPOSED_SOURCES]
    if unknown:
        raise PublishError(f"Unknown label source {', '.join(map(repr, unknown))}; use iou, crowd or requester.")
    if LabelSource.REQUESTER in sources and not labels:
        raise PublishError("The requester source needs the labels to verify (unit id -> label).")
    checked: dict[int, str] = {}
    for unit_id, label in (labels or {}).items():
        if not str(unit_id).isdigit():
            raise PublishError(f"Labels are keyed by unit id (an integer), not {unit_id!r}.")
        if not isinstance(label, str) or not display_label(label) or len(label) > LABEL_MAX:
            raise PublishError(f"The label for unit {unit_id} must be 1 to {LABEL_MAX} characters.")
        checked[int(unit_id)] = label
    return sources, checked


def hit_publish_verify(
    *,
    layers: Iterable[Layer],
    pool: Pool | None = None,
    sources: Iterable[str] = (LabelSource.IOU,),
    labels: dict[int, str] | None = None,  # unit id -> label, for the requester source
    settings: PublishSettings | None = None,  # default: PublishSettings.for_verify()
    created_by: User | None = None,
) -> HitBatch:
    """One verify HIT per unit of `layers` and label source (none twice), plus `settings.sentinels` sentinel
    HITs per layer on its clearest units. Returns the batch with `batch.report`; an empty batch is not kept."""
    layers, settings = publish_check(layers, settings or PublishSettings.for_verify())
    sources, labels = _check_sources(sources, labels)
    project_id = layers_project_id(layers)
    pool = pool_check(pool, project_id)
    channel_publish_check(project_id=project_id, channel=settings.channel)
    if pool is not None and settings.channel != Channel.SITE:
        raise PublishError(POOL_SITE_ONLY)
    options = settings.hit_fields()
    with transaction.atomic():
        batch = HitBatch.objects.create(
            project_id=project_id, pool=pool,
            name=settings.name or "Check proposed labels: " + ", ".join(
                f"{layer.job.network.name} {layer.name}" for layer in layers),
            kind=HitKind.VERIFY, created_by=created_by, **settings.batch_fields(),
        )
        batch.layers.set(layers)
        report = VerifyPublishReport(batch)
        existing = set(Hit.objects.filter(unit__layer__in=layers, kind=HitKind.VERIFY)
                       .values_list("unit_id", "label_source"))
        with_exemplars = set(Exemplar.objects.filter(unit__layer__in=layers, kind=Exemplar.Kind.TOP)
                             .values_list("unit_id", flat=True))
        for layer in layers:
            units = _units(layer)
            eligible = []
            for unit in units:
                if settings.skip_dead and unit.max_activation <= 0:
                    report.skipped_dead += 1
                    continue
                if unit.pk not in with_exemplars:
                    report.skipped_without_exemplars += 1
                    continue
                eligible.append(unit)
                for source in sources:
                    label = _proposed(unit, source, labels)
                    if not label:
                        report.skipped_no_label += 1
                    elif (unit.pk, source) in existing:
                        report.skipped_existing += 1
                    else:
                        _create(batch, unit, source, label, report, options)
            _publish_sentinels(batch, layer, eligible, settings.sentinels, existing, report, options)
        created = sum(report.created.values())
        if not created:
            batch.delete()  # nothing new: keep no empty batch around (batch.pk is None afterwards)
        else:
            cost = budget_enforce(batch=batch, hits=created)  # a refusal rolls the HITs back
            if batch.channel in MTURK_CHANNELS:  # MTurk's HITs are made by a task, after this commit
                batch_id = batch.pk
                transaction.on_commit(lambda: enqueue("tasks.crowd.mturk_publish_batch", batch_id))
            activity_record(project=project_id, actor=created_by, verb=Activity.Verb.PUBLISHED,
                            summary=f"batch {batch.pk} ({batch.name}) on {batch.get_channel_display()}: {created} "
                                    f"verify HITs" + (f", up to {cost}" if batch.is_external else ""))
    batch.report = report
    return batch


def publishable_verify_hits(layers: Iterable[Layer], *, sources: Iterable[str], sentinels: int,
                            skip_dead: bool = True) -> int:
    """At most how many verify HITs `hit_publish_verify` would create (for the cost shown before publishing):
    one per unit with pictures and label source, plus the sentinels of each layer; units without a label of
    a source, or with that HIT already, make fewer."""
    layers = list(layers)
    units = Unit.objects.filter(layer__in=layers, exemplars__kind=Exemplar.Kind.TOP).distinct()
    if skip_dead:
        units = units.filter(max_activation__gt=0)
    return units.count() * len(set(sources)) + sentinels * len(layers)


def _units(layer: Layer) -> list[Unit]:
    units = list(Unit.objects.filter(layer=layer).order_by("index").select_related("aggregate")
                 .prefetch_related("concept_scores__concept"))
    for unit in units:
        agg = getattr(unit, "aggregate", None)
        # Only a named crowd label can be verified ("no clear concept" proposes nothing).
        unit.crowd_word = agg.crowd_word if agg is not None and agg.category != "none" else ""
        unit.top_concepts = [s.concept.name for s in unit.concept_scores.all()]
    return units


def _create(batch: HitBatch, unit: Unit, source: str, label: str, report: VerifyPublishReport, options: dict) -> None:
    """Create one verify HIT; one that a concurrent publisher created first counts as existing."""
    try:
        # A savepoint per HIT: a concurrent publisher that created this HIT first makes only this insert fail.
        with transaction.atomic():
            Hit.objects.create(batch=batch, unit=unit, kind=HitKind.VERIFY, label_source=source,
                               proposed_label=label[:LABEL_MAX],
                               is_gold=unit.is_gold and source != LabelSource.SENTINEL, **options)
    except IntegrityError:
        report.skipped_existing += 1
        return
    report.created[source] = report.created.get(source, 0) + 1


def _publish_sentinels(batch, layer, eligible: list[Unit], count: int, existing, report, options) -> None:
    """Sentinel HITs on the layer's clearest units: gold ones first, then by IoU score, so the decoy
    label is unmistakably wrong rather than a near miss on a unit that detects nothing."""
    if not count:
        return
    vocabulary = list(Concept.objects.filter(dataset_id=layer.job.dataset_id).values_list("name", flat=True))
    if not vocabulary:
        raise PublishError(f"Layer {layer.name}'s dataset has no concept vocabulary to draw sentinel labels from; "
                           "publish with 0 sentinels.")
    ranked = sorted(eligible, key=lambda u: (not u.is_gold, -u.iou_score, u.index))
    made = 0
    for unit in ranked:
        if made >= count:
            break
        if (unit.pk, LabelSource.SENTINEL) in existing:
            report.skipped_existing += 1
            made += 1  # the layer already has this sentinel: it counts towards the wanted number
            continue
        label = sentinel_label(unit, vocabulary)
        if label:
            # Created here or by a concurrent publisher (then counted as existing): either way the layer
            # has this sentinel, so racing publishers never spread sentinels beyond the wanted number.
            _create(batch, unit, LabelSource.SENTINEL, label, report, options)
            made += 1


# --- answering -------------------------------------------------------------------------------------

def _own_verify_assignment(*, assignment_id: int, worker: User) -> Assignment:
    assignment = (Assignment.objects.select_for_update().select_related("hit", "hit__unit")
                  .filter(pk=assignment_id).first())
    if assignment is None:
        raise NotFound(f"There is no assignment {assignment_id}.")
    if assignment.worker_id != worker.pk:  # someone else's: as if it did not exist
        raise NotFound(f"There is no assignment {assignment_id}.")
    if assignment.hit.kind != HitKind.VERIFY:
        raise Conflict("This is a labelling HIT: answer it with a word and a category, not yes/no.")
    return assignment


@transaction.atomic
def verdict_submit(*, assignment_id: int, worker: User, verdict: str, now: datetime | None = None) -> Annotation:
    """Record the yes/no/unsure answer of an accepted verify assignment. A repeat of the same answer
    returns the first; a different one is refused."""
    now = now or timezone.now()
    assignment = _own_verify_assignment(assignment_id=assignment_id, worker=worker)
    verdict = (verdict or "").strip().lower() if isinstance(verdict, str) else ""
    if assignment.status != Assignment.Status.ACCEPTED:
        existing = Annotation.objects.filter(assignment=assignment).first()
        if existing is not None and existing.verdict == verdict:
            return existing  # a double submit of the same answer is harmless
        if existing is not None:
            raise Conflict("This assignment was already submitted with a different answer; it cannot be changed.")
        raise Conflict(f"This assignment is {assignment.get_status_display().lower()}; it can no longer be submitted.")
    if verdict not in VERDICTS:
        raise InvalidAnswer({"verdict": ["Answer yes, no or unsure (keys Y, N, U)."]})
    if assignment.deadline <= now:
        raise Conflict("The time for this assignment ran out; it has been offered to someone else.")

    hit = assignment.hit
    if (hit.label_source == LabelSource.CROWD
            and label_answers_by(worker).filter(assignment__hit__unit=hit.unit_id).exists()):
        # The claim never offers it (services._offerable); this guards every other way to an assignment.
        raise NotAllowed("You labelled this unit, so you cannot verify its crowd label: that would be judging your "
                         "own answer.")
    sentinel = hit.label_source == LabelSource.SENTINEL
    gold_correct = None
    if not sentinel and (hit.is_gold or hit.unit.is_gold):
        expected = label_matches_gold(hit.proposed_label, hit.unit)
        if expected is not None:
            # "unsure" on a known answer is not credited: gold measures whether annotators can tell.
            gold_correct = verdict == ("yes" if expected else "no")
    missed = int(sentinel and verdict == "yes")
    annotation = Annotation.objects.create(
        assignment=assignment, verdict=verdict, word="", category="", gold_correct=gold_correct,
        sentinels_shown=int(sentinel), sentinels_missed=missed,
    )
    # The same bookkeeping as a labelling submit (crowd.services.annotation_submit): an outside crowd's
    # answer waits for its marketplace (units/crowd/confirmation.py), which then flags a missed sentinel.
    outside = hit.batch.channel != Channel.SITE
    assignment.status = Assignment.Status.PENDING if outside else Assignment.Status.SUBMITTED
    assignment.submitted_at = now
    assignment.work_seconds = (now - assignment.accepted_at).total_seconds()
    assignment.auto_approve_at = now + timedelta(seconds=hit.auto_approval_delay_seconds)
    assignment.save(update_fields=["status", "submitted_at", "work_seconds", "auto_approve_at"])
    if missed and not outside:
        annotator_flag(user=worker, reason=f"accepted the sentinel label {hit.proposed_label!r}, which does not fit, "
                                           f"in assignment {assignment.pk}")
    hit_sync_status(hit, now=now)
    return annotation
