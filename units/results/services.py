"""Writes of the results app: aggregation runs, annotator skill, adaptive redundancy, synonyms, exports."""
from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from annotate_site.celery import enqueue, enqueue_background, enqueue_in
from annotate_site.plainsql import execute, fetch_one, quote
from units.crowd.models import Annotation, Hit, HitBatch, HitKind
from units.dissection.models import DissectionJob, Exemplar, Layer, ProbeDataset

from . import aggregation
from .comparison import category_match, word_match
from .models import AggregationRun, AggregationSchedule, AnnotatorSkill, ExportJob, SynonymEntry, UnitAggregate
from .normalize import Vocabulary, normalize_category, normalize_word
from .selectors import COUNTED_STATUSES, counted_annotation_rows, top_exemplar_counts, vocabulary_for
from .verification import verification_run_layer


class ResultsError(Exception):
    """A results action that cannot be done as asked; the message says why and what to do."""


def _setting(name: str, default):
    return getattr(settings, name, default)


def interpretable_precision() -> float:
    return float(_setting("RESULTS_INTERPRETABLE_PRECISION", 0.75))


def redundancy_parameters() -> dict:
    """Adaptive redundancy: a HIT whose agreement stays below `agreement` after all its
    assignments gets one more, up to `cap` assignments in all."""
    return {
        "enabled": bool(_setting("RESULTS_ADAPTIVE_REDUNDANCY", True)),
        "agreement": float(_setting("RESULTS_REDUNDANCY_AGREEMENT", 0.5)),
        "cap": int(_setting("RESULTS_REDUNDANCY_CAP", 5)),
    }


def layer_answers(layer: Layer, vocab: Vocabulary) -> list[aggregation.Answer]:
    """Every counted labelling answer of a layer, in annotation order, as the aggregation reads them.

    Plain rows, not model instances: a 6,000-unit layer with 20,000 answers took 8 s and 180 MB as
    Annotation objects with their assignment, HIT, unit, worker and prefetched marks (the soak's
    worker grew to match); two value queries and a dict keep it to the tuples the methods need.
    """
    counted = counted_annotation_rows(layer=layer)
    rows = list(counted.order_by("id").values_list(
        "id", "assignment__hit__unit_id", "assignment__worker_id", "word", "category",
        "assignment__hit__exemplars_shown").iterator(chunk_size=5000))
    tops = top_exemplar_counts({row[1] for row in rows})
    # Only top images within what the HIT showed count for precision; sentinels are quality control.
    marked_ranks: dict[int, list[int]] = defaultdict(list)
    marks = Annotation.non_fitting.through.objects.filter(
        annotation__in=counted.values("id"), exemplar__kind=Exemplar.Kind.TOP)
    for annotation_id, rank in marks.values_list("annotation_id", "exemplar__rank").iterator(chunk_size=5000):
        marked_ranks[annotation_id].append(rank)
    answers = []
    for pk, unit_id, worker_id, word, category, exemplars_shown in rows:
        shown = min(exemplars_shown, tops.get(unit_id, 0))
        answers.append(aggregation.Answer(
            task=unit_id, worker=worker_id, word=vocab.canonical(word), category=normalize_category(category),
            shown=shown, non_fitting=sum(1 for rank in marked_ranks.get(pk, ()) if rank < shown),
        ))
    return answers


# Fields of UnitAggregate a run computes; a row is rewritten only when one of them changed.
AGGREGATE_FIELDS = ("crowd_word", "concept", "category_mv", "category_ds", "category_ds_probability", "agreement",
                    "category_agreement", "precision", "interpretable", "n_annotations", "word_match",
                    "category_match")


def aggregation_run_layer(*, layer: Layer, adapt: bool = True) -> AggregationRun:
    """Aggregate every annotation of a layer; idempotent (reruns leave unchanged units alone).

    The answers are read and aggregated outside any write transaction: Dawid-Skene takes seconds on
    a large layer, and on SQLite an open write transaction would stop every submit meanwhile. Only
    the writes happen under the layer's lock, in one short transaction, and only for the units
    whose aggregate changed. Dawid-Skene itself is rerun over the whole layer (its confusion
    matrices tie every unit together), so the stored result is always the from-scratch one.
    """
    vocab = vocabulary_for(layer.job.dataset)
    redundancy = redundancy_parameters()
    params = {
        "category": ["MajorityVote", "DawidSkene"], "word": "vote over normalised words",
        "ds_iterations": aggregation.DS_ITERATIONS, "ds_tol": aggregation.DS_TOLERANCE,
        "interpretable_precision": interpretable_precision(), "counted_statuses": ["submitted", "approved"],
        "redundancy": redundancy,
    }
    started = timezone.now()
    answers = layer_answers(layer, vocab)
    result = aggregation.aggregate(answers)
    with transaction.atomic():
        # Serialise the writes of runs of the same layer; a run that read later answers and already
        # wrote wins, so a slow run never overwrites a newer result with an older one.
        Layer.objects.select_for_update().get(pk=layer.pk)
        newer = (AggregationRun.objects.filter(layer=layer, status=AggregationRun.Status.SUCCEEDED,
                                               started_at__gt=started).order_by("-started_at").first())
        if newer is not None:
            return newer
        run = AggregationRun.objects.create(
            layer=layer, method="crowdkit MajorityVote+DawidSkene", parameters=params, started_at=started
        )
        changed = _aggregates_write(run=run, layer=layer, vocab=vocab, result=result)
        _skills_update(run=run, ds_skills=result.ds_skills)
        reopened = _redundancy_apply(result=result, params=redundancy) if adapt and redundancy["enabled"] else []
        run.alpha = result.alpha_category
        run.n_units = len(result.units)
        run.n_annotations = len(answers)
        # Verify HITs of the layer (crowd.verify): their verdicts and the human-judged precision table.
        verification = verification_run_layer(layer=layer, run=run)
        run.summary = {"alpha_category": result.alpha_category, "alpha_word": result.alpha_word,
                       "reopened_hits": reopened, "units_changed": changed, "verification": verification}
        run.status = AggregationRun.Status.SUCCEEDED
        run.finished_at = timezone.now()
        run.save(update_fields=["alpha", "n_units", "n_annotations", "summary", "status", "finished_at"])
    return run


def _aggregates_write(*, run: AggregationRun, layer: Layer, vocab: Vocabulary,
                      result: aggregation.AggregationResult) -> int:
    """Store each unit's aggregate, writing only rows that changed; returns how many were written."""
    threshold = interpretable_precision()
    now = timezone.now()
    units = {u.pk: u for u in layer.units.all()}
    stored = {a.unit_id: a for a in UnitAggregate.objects.filter(unit__layer=layer)}
    new, updated = [], []
    for unit_id, res in result.units.items():
        unit = units[unit_id]
        named = bool(res.crowd_word) and res.category_mv != aggregation.NONE
        values = {
            "crowd_word": res.crowd_word, "concept": vocab.match(res.crowd_word),
            "category_mv": res.category_mv, "category_ds": res.category_ds,
            "category_ds_probability": res.category_ds_probability, "agreement": res.agreement,
            "category_agreement": res.category_agreement, "precision": res.precision,
            "interpretable": named and res.precision is not None and res.precision >= threshold,
            "n_annotations": res.n_annotations,
            "word_match": word_match(vocab, res.crowd_word, unit.iou_label),
            "category_match": category_match(res.category_mv, unit.iou_category),
        }
        row = stored.get(unit_id)
        if row is None:
            new.append(UnitAggregate(unit=unit, run=run, **values))
        elif any(getattr(row, name) != value for name, value in values.items()):
            for name, value in values.items():
                setattr(row, name, value)
            row.run, row.updated_at = run, now
            updated.append(row)
    UnitAggregate.objects.bulk_create(new, batch_size=500)
    UnitAggregate.objects.bulk_update(updated, [*AGGREGATE_FIELDS, "run", "updated_at"], batch_size=500)
    # Units whose answers were all rejected since the last run lose their stale label.
    gone, _ = UnitAggregate.objects.filter(unit__layer=layer).exclude(unit_id__in=result.units).delete()
    return len(new) + len(updated) + gone


# --- debounced aggregation ---------------------------------------------------------------------

# A queued mark whose due time passed this long ago, or a running mark older than SCHEDULE_STALE_RUNS
# times the layer's last run (at least SCHEDULE_STALE), is taken for lost (a worker killed with the
# message or in the run) and may be replaced: aggregation catches up within about a minute of a
# worker's death instead of waiting for the periodic sweep.
SCHEDULE_STALE = timedelta(minutes=1)
SCHEDULE_STALE_RUNS = 5


def aggregation_debounce_seconds() -> float:
    return float(_setting("RESULTS_AGGREGATE_DEBOUNCE", 5.0))


# A layer's next run waits at least this many times as long as its last run took, so aggregation of
# a big, busy layer takes at most about 1/(1+AGGREGATE_LOAD_FACTOR) of a worker's time, whatever the
# debounce setting (a 512-unit layer took 1.1 s of CPU per run; at a 5 s delay that was 20% of a core
# that the web processes on the same 2 cores needed). Its answers are counted all the same, later.
AGGREGATE_LOAD_FACTOR = 10.0


def _last_run_duration(layer_id: int) -> timedelta:
    last = (AggregationRun.objects.filter(layer_id=layer_id, status=AggregationRun.Status.SUCCEEDED)
            .exclude(finished_at=None).order_by("-started_at").values_list("started_at", "finished_at").first())
    return last[1] - last[0] if last is not None else timedelta(0)


def aggregation_delay(layer_id: int) -> float:
    """The debounce delay, stretched to AGGREGATE_LOAD_FACTOR x the layer's last run when that is longer."""
    delay = aggregation_debounce_seconds()
    if delay > 0:
        delay = max(delay, AGGREGATE_LOAD_FACTOR * _last_run_duration(layer_id).total_seconds())
    return delay


def _schedule_row_create(layer_id: int) -> bool:
    """The layer's schedule row, created on its first use; False when the layer is gone."""
    if not Layer.objects.filter(pk=layer_id).exists():
        return False
    try:
        with transaction.atomic():
            AggregationSchedule.objects.create(layer_id=layer_id)
    except IntegrityError:  # a concurrent first request created it
        pass
    return True


def aggregation_marks_drop(layer_ids) -> int:
    """Take the queued (not running) marks of these layers for lost, so the next aggregation_schedule queues
    a run at once. For a worker that starts after a crash: the delayed messages its predecessor had
    reserved died with it (`kill -9`), and their marks held new runs back until they went stale
    (SCHEDULE_STALE, then the periodic sweep: 109 s after a load in the fault benchmark). A message that a
    live worker still holds makes one extra run, no more."""
    return (AggregationSchedule.objects.filter(layer_id__in=list(layer_ids), running_since=None)
            .exclude(due_at=None).update(due_at=None))


def aggregation_schedule(*, layer_id: int, now=None) -> bool:
    """Ask for an aggregation of the layer within the debounce delay (RESULTS_AGGREGATE_DEBOUNCE).

    Returns True when this call queued the run, False when one was already queued: that run reads
    the answers only when it starts, so it will count this one too. The conditional UPDATE is the
    mutex: of many submits finishing HITs of the same layer at once, exactly one queues a run.
    Call it after commit, so the run can see the answer that asked for it.
    """
    now = now or timezone.now()
    delay = aggregation_debounce_seconds()

    table = quote(AggregationSchedule._meta.db_table)

    def mark() -> int:
        # Plain SQL (every submit that completes a HIT runs this): AggregationSchedule.objects.filter(
        # layer_id=..).filter(Q(due_at=None) | Q(due_at__lt=now - SCHEDULE_STALE)).update(due_at=...).
        return execute(f"UPDATE {table} SET due_at = %s WHERE layer_id = %s AND (due_at IS NULL OR due_at < %s)",
                       [now + timedelta(seconds=delay), layer_id, now - SCHEDULE_STALE])

    queued = mark()
    if not queued and fetch_one(f"SELECT 1 FROM {table} WHERE layer_id = %s", [layer_id]) is None:
        if not _schedule_row_create(layer_id):
            return False
        queued = mark()
    if queued:
        # Only the call that queued asks how long the last run took (once per delay, not per submit).
        stretched = aggregation_delay(layer_id)
        if stretched > delay:
            delay = stretched
            AggregationSchedule.objects.filter(layer_id=layer_id).update(due_at=now + timedelta(seconds=delay))
        enqueue_in(delay, "tasks.results.aggregate_layer", layer_id, None, True)
    return bool(queued)


def aggregation_run_scheduled(*, layer_id: int) -> AggregationRun | None:
    """The queued run of a layer: unmark it, run it unless another run of the layer is in progress
    (then queue it again, so answers that came during that run are counted after it)."""
    now = timezone.now()
    stale = max(SCHEDULE_STALE, SCHEDULE_STALE_RUNS * _last_run_duration(layer_id))
    mine = (AggregationSchedule.objects.filter(layer_id=layer_id)
            .filter(Q(running_since=None) | Q(running_since__lt=now - stale))
            # Unmark "queued" before reading the answers: an answer committed after this point
            # queues a new run, one committed before it is read by this run. None is lost.
            .update(due_at=None, running_since=now))
    if not mine:
        AggregationSchedule.objects.filter(layer_id=layer_id).update(due_at=None)
        aggregation_schedule(layer_id=layer_id)
        return None
    try:
        layer = Layer.objects.select_related("job__dataset").filter(pk=layer_id).first()
        return aggregation_run_layer(layer=layer) if layer is not None else None
    finally:
        AggregationSchedule.objects.filter(layer_id=layer_id, running_since=now).update(running_since=None)


def aggregation_run_batch(*, batch: HitBatch) -> AggregationRun:
    """Aggregate each layer of a batch, then record the batch's own alpha over its HITs."""
    layers = Layer.objects.filter(units__hits__batch=batch).distinct()
    for layer in layers:
        aggregation_run_layer(layer=layer)
    records = [
        (unit_id, worker_id, normalize_category(category))
        for unit_id, worker_id, category in Annotation.objects.filter(
            assignment__hit__batch=batch, assignment__status__in=COUNTED_STATUSES, assignment__hit__kind=HitKind.LABEL
        ).values_list("assignment__hit__unit_id", "assignment__worker_id", "category")
    ]
    now = timezone.now()
    return AggregationRun.objects.create(
        batch=batch, method="krippendorff alpha (nominal) over categories", parameters={"layers": [l.pk for l in layers]},
        status=AggregationRun.Status.SUCCEEDED, n_units=len({r[0] for r in records}), n_annotations=len(records),
        alpha=aggregation.krippendorff_alpha(records), started_at=now, finished_at=now,
    )


def aggregation_run_job(*, job: DissectionJob) -> list[AggregationRun]:
    return [aggregation_run_layer(layer=layer) for layer in job.layer_set.all()]


def _is_gold_correct(vocab: Vocabulary, ann, unit) -> bool:
    """Right category and one of the gold words (the crowd app's rule); "none" gold needs no word."""
    gold_category = normalize_category(unit.gold_category)
    if gold_category and normalize_category(ann.category) != gold_category:
        return False
    if gold_category == aggregation.NONE or not unit.gold_word.strip():
        return True
    return vocab.names_gold(ann.word, unit.gold_word)


def _skills_update(*, run: AggregationRun, ds_skills: dict) -> None:
    """Gold accuracy over all of a worker's gold answers, and the latest Dawid-Skene skill.

    One query for every worker's gold answers and two bulk writes, whatever the crowd's size.
    """
    if not ds_skills:
        return
    gold = (
        Annotation.objects.filter(assignment__worker_id__in=list(ds_skills), assignment__status__in=COUNTED_STATUSES,
                                  assignment__hit__unit__is_gold=True, assignment__hit__kind=HitKind.LABEL)
        .select_related("assignment__hit__unit__layer__job__dataset")
    )
    answered: dict = {w: 0 for w in ds_skills}
    correct: dict = {w: 0 for w in ds_skills}
    vocabs: dict[int, Vocabulary] = {}
    for ann in gold:
        unit = ann.assignment.hit.unit
        dataset = unit.layer.job.dataset
        if dataset.pk not in vocabs:
            vocabs[dataset.pk] = vocabulary_for(dataset)
        worker_id = ann.assignment.worker_id
        answered[worker_id] += 1
        correct[worker_id] += _is_gold_correct(vocabs[dataset.pk], ann, unit)
    stored = {s.worker_id: s for s in AnnotatorSkill.objects.filter(worker_id__in=list(ds_skills))}
    now = timezone.now()
    new, updated = [], []
    for worker_id, skill in ds_skills.items():
        values = {"gold_answered": answered[worker_id], "gold_correct": correct[worker_id],
                  "gold_accuracy": correct[worker_id] / answered[worker_id] if answered[worker_id] else None,
                  "ds_skill": skill, "run": run}
        row = stored.get(worker_id)
        if row is None:
            new.append(AnnotatorSkill(worker_id=worker_id, **values))
            continue
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
        updated.append(row)
    AnnotatorSkill.objects.bulk_create(new, batch_size=500)
    AnnotatorSkill.objects.bulk_update(updated, ["gold_answered", "gold_correct", "gold_accuracy", "ds_skill", "run",
                                                 "updated_at"], batch_size=500)


def _redundancy_apply(*, result: aggregation.AggregationResult, params: dict) -> list[int]:
    """Give low-agreement units one more assignment (up to the cap) and reopen their HITs."""
    low = [task for task, res in result.units.items() if res.agreement < params["agreement"]]
    reopened = []
    now = timezone.now()
    for hit in Hit.objects.select_for_update().filter(unit_id__in=low, is_gold=False, kind=HitKind.LABEL):
        res = result.units[hit.unit_id]
        if res.n_annotations < hit.max_assignments or hit.max_assignments >= params["cap"]:
            continue  # still waiting for its assignments, or already at the cap
        hit.max_assignments += 1
        hit.status = Hit.Status.ASSIGNABLE
        fields = ["max_assignments", "status"]
        if hit.expires_at <= now:
            hit.expires_at = now + timedelta(seconds=hit.lifetime_seconds)
            fields.append("expires_at")
        hit.save(update_fields=fields)
        reopened.append(hit.pk)
    return reopened


# --- synonyms --------------------------------------------------------------------------------

def synonym_set(*, dataset: ProbeDataset, word: str, target: str, user=None) -> SynonymEntry:
    key, value = normalize_word(word), normalize_word(target)
    if not key or not value:
        raise ResultsError("Both the word and what it stands for must contain letters or digits.")
    if key == value:
        raise ResultsError(f"'{word}' already normalises to '{value}'; no synonym is needed.")
    with transaction.atomic():
        entry, _ = SynonymEntry.objects.update_or_create(
            dataset=dataset, word=key, defaults={"target": value, "created_by": user}
        )
    return entry


def synonym_delete(*, entry: SynonymEntry) -> None:
    entry.delete()


# --- exports ---------------------------------------------------------------------------------

def export_create(*, kind: str, user=None, job: DissectionJob | None = None, layer: Layer | None = None,
                  batch: HitBatch | None = None, background: bool = True) -> ExportJob:
    """Record an export request and enqueue it after commit (the worker writes the file).

    background=False leaves the row pending for the caller to run (`export_run`), as the command does.
    """
    if kind not in ExportJob.Kind.values:
        raise ResultsError(f"Unknown export kind {kind!r}; choose one of {', '.join(ExportJob.Kind.values)}.")
    if kind == ExportJob.Kind.TALLY and layer is None:
        raise ResultsError("A tally.csv export is per layer: choose the layer.")
    if job is None and layer is None and batch is None:
        raise ResultsError("Choose what to export: a dissection job, a layer or a HIT batch.")
    with transaction.atomic():
        export = ExportJob.objects.create(kind=kind, job=job, layer=layer, batch=batch, created_by=user)
        if background:
            transaction.on_commit(lambda: enqueue("tasks.results.run_export", export.pk))
    return export


def export_run(*, export_id: int) -> ExportJob:
    """Write an export's file; idempotent (a finished export is left alone, a retried one is rewritten)."""
    from pathlib import Path

    from .exports import export_filename, export_write

    export = ExportJob.objects.select_related("layer__job__network", "job", "batch").get(pk=export_id)
    if export.status == ExportJob.Status.SUCCEEDED and export.file:
        return export
    export.status, export.progress, export.error_message = ExportJob.Status.RUNNING, 0.0, ""
    export.save(update_fields=["status", "progress", "error_message"])

    def progress(value: float) -> None:
        ExportJob.objects.filter(pk=export.pk).update(progress=round(min(max(value, 0.0), 0.99), 3))

    relpath = f"exports/{export_filename(export)}"
    destination = Path(settings.MEDIA_ROOT) / relpath
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(destination.name + ".part")
    try:
        export_write(export, partial, progress)
        partial.replace(destination)  # readers never see a half-written file
    except Exception as exc:  # the row must say what went wrong; the worker log keeps the traceback
        partial.unlink(missing_ok=True)
        export.status, export.error_message = ExportJob.Status.FAILED, f"Export failed: {exc}"
        export.finished_at = timezone.now()
        export.save(update_fields=["status", "error_message", "finished_at"])
        raise
    export.status, export.progress, export.file = ExportJob.Status.SUCCEEDED, 1.0, relpath
    export.finished_at = timezone.now()
    export.save(update_fields=["status", "progress", "file", "finished_at"])
    return export


def aggregation_request(*, layers: list[Layer] | None = None, job: DissectionJob | None = None,
                        batch: HitBatch | None = None) -> list[int]:
    """Queue aggregation of some layers, of a job's layers or of a batch (and its layers); returns the
    layer ids queued. The runs happen on the workers (without a broker, in the background), after this
    transaction commits: the request that asked answers at once."""
    if batch is not None:
        layer_ids = list(Layer.objects.filter(units__hits__batch=batch).distinct().values_list("pk", flat=True))
        transaction.on_commit(lambda: enqueue_background("tasks.results.aggregate_batch", batch.pk))
    else:
        layer_ids = [layer.pk for layer in layers] if layers else list(job.layer_set.values_list("pk", flat=True))
    for layer_id in layer_ids if batch is None else []:
        transaction.on_commit(lambda layer_id=layer_id: enqueue_background("tasks.results.aggregate_layer", layer_id))
    return layer_ids
