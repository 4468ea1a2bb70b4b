"""Writes of the results app: aggregation runs, annotator skill, adaptive redundancy, synonyms, exports."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate_site.celery import enqueue, enqueue_background
from units.crowd.models import Annotation, Hit, HitBatch, HitKind
from units.crowd.publishing import redundancy_defaults
from units.dissection.models import DissectionJob, Layer, ProbeDataset
from units.dissection.services import media_remove_on_commit
from units.projects.models import Activity
from units.projects.services import activity_record

from . import aggregation, reliability
from .comparison import category_match, word_match
from .models import AggregationRun, AnnotatorSkill, ExportJob, SynonymEntry, UnitAggregate
from .normalize import Vocabulary, normalize_category, normalize_word
from .errors import ResultsError
from .selectors import COUNTED_STATUSES, layer_answers, vocabulary_for
from .verification import verification_run_layer


def _setting(name: str, default):
    return getattr(settings, name, default)


def interpretable_precision() -> float:
    return float(_setting("RESULTS_INTERPRETABLE_PRECISION", 0.75))


def redundancy_parameters() -> dict:
    """Adaptive redundancy: a HIT whose published label is less probable than `probability` (the lower of
    the word's and the category's calibrated probabilities) after all its assignments gets one more, up to
    `cap` assignments in all. A batch's own `redundancy_probability` / `redundancy_cap` override these."""
    return {"enabled": bool(_setting("RESULTS_ADAPTIVE_REDUNDANCY", True)), **redundancy_defaults()}


# Fields of UnitAggregate a run computes; a row is rewritten only when one of them changed.
AGGREGATE_FIELDS = ("crowd_word", "word_probability", "concept", "category", "category_probability", "method",
                    "category_mv", "category_ds", "category_ds_probability", "agreement", "category_agreement",
                    "precision", "interpretable", "n_annotations", "word_match", "category_match")


def aggregation_run_layer(*, layer: Layer, adapt: bool = True) -> AggregationRun:
    """Aggregate every annotation of a layer; idempotent (reruns leave unchanged units alone).

    The answers are read and aggregated outside any write transaction: Dawid-Skene takes seconds on
    a large layer, and on SQLite an open write transaction would stop every submit meanwhile. Only
    the writes happen under the layer's lock, in one short transaction, and only for the units
    whose aggregate changed. The model is refitted over the whole layer (worker skills tie every
    unit together), so the stored result is always the from-scratch one.
    """
    vocab = vocabulary_for(layer.job.dataset)
    redundancy = redundancy_parameters()
    params = {
        "published": aggregation.METHOD, "beside": "MajorityVote (category_mv)",
        "iterations": reliability.ITERATIONS, "tol": reliability.TOLERANCE,
        "skill_prior": [reliability.PRIOR_RIGHT, reliability.PRIOR_WRONG],
        "confusion_prior": [reliability.CONFUSION_PRIOR, reliability.OWN_CONFUSION],
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
            project_id=layer.job.project_id,
            layer=layer,
            method=aggregation.METHOD,
            parameters=params,
            started_at=started,
        )
        changed = _aggregates_write(run=run, layer=layer, vocab=vocab, result=result)
        _skills_update(run=run, skills=result.skills)
        reopened = _redundancy_apply(result=result, params=redundancy) if adapt and redundancy["enabled"] else []
        run.alpha = result.alpha_category
        run.n_units = len(result.units)
        run.n_annotations = len(answers)
        # Verify HITs of the layer (crowd.verify): their verdicts and the human-judged precision table.
        verification = verification_run_layer(layer=layer, run=run)
        run.summary = {"alpha_category": result.alpha_category, "alpha_word": result.alpha_word,
                       "skills": {str(worker): skill for worker, skill in result.skills.items()},
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
        named = bool(res.crowd_word) and res.category != aggregation.NONE
        values = {
            "crowd_word": res.crowd_word, "word_probability": res.word_probability,
            "concept": vocab.match(res.crowd_word), "category": res.category,
            "category_probability": res.category_probability, "method": aggregation.METHOD_KEY,
            "category_mv": res.category_mv, "category_ds": res.category,
            "category_ds_probability": res.category_probability, "agreement": res.agreement,
            "category_agreement": res.category_agreement, "precision": res.precision,
            "interpretable": named and res.precision is not None and res.precision >= threshold,
            "n_annotations": res.n_annotations,
            "word_match": word_match(vocab, res.crowd_word, unit.iou_label),
            "category_match": category_match(res.category, unit.iou_category),
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
        project_id=batch.project_id, batch=batch, method="krippendorff alpha (nominal) over categories",
        parameters={"layers": [layer.pk for layer in layers]},
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


def _skills_update(*, run: AggregationRun, skills: dict) -> None:
    """Gold accuracy over all of a worker's gold answers, and the skill of the latest run's model.

    One query for every worker's gold answers and two bulk writes, whatever the crowd's size.
    """
    if not skills:
        return
    gold = (
        Annotation.objects.filter(assignment__worker_id__in=list(skills), assignment__status__in=COUNTED_STATUSES,
                                  assignment__hit__unit__is_gold=True, assignment__hit__kind=HitKind.LABEL)
        .select_related("assignment__hit__unit__layer__job__dataset")
    )
    answered: dict = {w: 0 for w in skills}
    correct: dict = {w: 0 for w in skills}
    vocabs: dict[int, Vocabulary] = {}
    for ann in gold:
        unit = ann.assignment.hit.unit
        dataset = unit.layer.job.dataset
        if dataset.pk not in vocabs:
            vocabs[dataset.pk] = vocabulary_for(dataset)
        worker_id = ann.assignment.worker_id
        answered[worker_id] += 1
        correct[worker_id] += _is_gold_correct(vocabs[dataset.pk], ann, unit)
    stored = {s.worker_id: s for s in AnnotatorSkill.objects.filter(worker_id__in=list(skills))}
    now = timezone.now()
    new, updated = [], []
    for worker_id, skill in skills.items():
        values = {"gold_answered": answered[worker_id], "gold_correct": correct[worker_id],
                  "gold_accuracy": correct[worker_id] / answered[worker_id] if answered[worker_id] else None,
                  "skill": skill, "ds_skill": skill, "run": run}
        row = stored.get(worker_id)
        if row is None:
            new.append(AnnotatorSkill(worker_id=worker_id, **values))
            continue
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_at = now
        updated.append(row)
    AnnotatorSkill.objects.bulk_create(new, batch_size=500)
    AnnotatorSkill.objects.bulk_update(updated, ["gold_answered", "gold_correct", "gold_accuracy", "skill", "ds_skill",
                                                 "run", "updated_at"], batch_size=500)


def _redundancy_apply(*, result: aggregation.AggregationResult, params: dict) -> list[int]:
    """Give units whose published label is improbable one more assignment (up to the cap) and reopen
    their HITs; the batch's own threshold and cap, where set, override the site's."""
    def weakest(res: aggregation.UnitResult) -> float:
        return min(p for p in (res.category_probability, res.word_probability, 1.0) if p is not None)

    # Below the highest threshold any batch may set; each HIT is then judged by its own batch's.
    ceiling = max([params["probability"], *HitBatch.objects.filter(redundancy_probability__isnull=False)
                   .values_list("redundancy_probability", flat=True).distinct()])
    low = [task for task, res in result.units.items() if weakest(res) < ceiling]
    reopened = []
    now = timezone.now()
    hits = (Hit.objects.select_for_update(of=("self",)).select_related("batch")
            .filter(unit_id__in=low, is_gold=False, kind=HitKind.LABEL).order_by("pk"))
    for hit in hits:
        res = result.units[hit.unit_id]
        threshold = hit.batch.redundancy_probability
        threshold = params["probability"] if threshold is None else threshold
        cap = hit.batch.redundancy_cap or params["cap"]
        if weakest(res) >= threshold:
            continue
        if res.n_annotations < hit.max_assignments or hit.max_assignments >= cap:
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
            dataset=dataset, word=key, defaults={"target": value, "created_by": user, "project_id": dataset.project_id}
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
    project_ids = {job.project_id if job else None, layer.job.project_id if layer else None,
                   batch.project_id if batch else None} - {None}
    if len(project_ids) != 1:
        raise ResultsError("An export covers one project: choose the job, layer and batch from the same project.")
    with transaction.atomic():
        export = ExportJob.objects.create(project_id=project_ids.pop(), kind=kind, job=job, layer=layer, batch=batch,
                                          created_by=user)
        activity_record(project=export.project_id, actor=user, verb=Activity.Verb.EXPORTED,
                        summary=f"export {export.pk} ({kind})")
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


def project_exports_remove(*, project, **_) -> None:
    """A project is being deleted (projects.signals.project_deleting): its export files go after the commit."""
    media_remove_on_commit(
        list(ExportJob.objects.filter(project=project).exclude(file="").values_list("file", flat=True))
    )
