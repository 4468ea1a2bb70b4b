"""Reads for aggregation, comparison, dashboards and exports."""
from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet
from django.utils import timezone

from units.crowd.models import Annotation, Assignment, Hit, HitKind
from units.dissection.models import DissectionJob, Exemplar, Layer, ProbeDataset, Unit

from . import aggregation
from .comparison import IOU_THRESHOLD, LayerComparison, UnitLabels, compare_layer
from .models import AggregationRun, AnnotatorSkill, UnitAggregate
from .normalize import Vocabulary, normalize_category, strip_broden_suffix

# Work that counts as an answer: submitted (awaiting review) or approved; rejected work is left out.
COUNTED_STATUSES = (Assignment.Status.SUBMITTED, Assignment.Status.APPROVED)
DONE_STATUSES = (Assignment.Status.SUBMITTED, Assignment.Status.APPROVED, Assignment.Status.REJECTED)


def vocabulary_for(dataset: ProbeDataset) -> Vocabulary:
    # .all() rather than values_list so that a list of layers can prefetch every dataset's words at once.
    names = [c.name for c in dataset.concepts.all()]
    synonyms = {s.word: s.target for s in dataset.synonyms.all()}
    return Vocabulary(names, synonyms)


def counted_annotation_rows(*, units: QuerySet[Unit] | None = None, layer: Layer | None = None) -> QuerySet[Annotation]:
    """The counted answers, unjoined: for `.values()` reads (aggregation) and subqueries."""
    # Labelling answers only: verify HITs' yes/no answers are aggregated by results.verification.
    qs = Annotation.objects.filter(assignment__status__in=COUNTED_STATUSES, assignment__hit__kind=HitKind.LABEL)
    if layer is not None:
        qs = qs.filter(assignment__hit__unit__layer=layer)
    if units is not None:
        qs = qs.filter(assignment__hit__unit__in=units)
    return qs


def counted_annotations(*, units: QuerySet[Unit] | None = None, layer: Layer | None = None) -> QuerySet[Annotation]:
    qs = counted_annotation_rows(units=units, layer=layer)
    return qs.select_related("assignment__hit__unit", "assignment__worker").prefetch_related(
        Prefetch("non_fitting", queryset=Exemplar.objects.only("id", "unit_id", "kind", "rank"))
    ).order_by("id")


def shown_top_exemplars(hit: Hit, top_count: int) -> int:
    return min(hit.exemplars_shown, top_count)


def top_exemplar_counts(unit_ids) -> dict[int, int]:
    rows = (
        Exemplar.objects.filter(unit_id__in=unit_ids, kind=Exemplar.Kind.TOP)
        .values("unit_id").annotate(n=Count("id"))
    )
    return {r["unit_id"]: r["n"] for r in rows}


def layer_units(layer: Layer) -> QuerySet[Unit] | list[Unit]:
    # with_layer_units() fetched them for a whole page of layers in one query.
    if hasattr(layer, "ordered_units"):
        return layer.ordered_units
    return layer.units.select_related("aggregate").order_by("index")


def with_layer_units(layers: QuerySet[Layer]) -> QuerySet[Layer]:
    """Layers with their units, aggregates and vocabulary prefetched: comparisons of many layers in few queries."""
    return layers.prefetch_related(
        Prefetch("units", queryset=Unit.objects.select_related("aggregate").order_by("index"), to_attr="ordered_units"),
        "job__dataset__concepts", "job__dataset__synonyms",
    )


def layer_comparison(layer: Layer, vocab: Vocabulary | None = None) -> LayerComparison:
    vocab = vocab or vocabulary_for(layer.job.dataset)
    return compare_layer((unit_labels(u) for u in layer_units(layer)), vocab)


def unit_labels(unit: Unit) -> UnitLabels:
    agg = getattr(unit, "aggregate", None)
    gold = unit.gold_word if unit.is_gold else ""
    return UnitLabels(
        unit=unit.pk,
        crowd_word=agg.crowd_word if agg else "",
        crowd_category=agg.category if agg else "",
        crowd_interpretable=bool(agg and agg.interpretable),
        iou_label=unit.iou_label,
        iou_category=unit.iou_category,
        iou_score=unit.iou_score,
        gold_word=gold,
        gold_category=unit.gold_category if unit.is_gold else "",
    )


def detector_counts(layer: Layer) -> dict:
    """NetDissect's bar chart (unique concepts per category among IoU detectors) and the crowd's own."""
    iou_by_cat: dict[str, set] = {}
    crowd_by_cat: dict[str, set] = {}
    iou_units = crowd_units = 0
    for unit in layer_units(layer):
        if unit.iou_score > IOU_THRESHOLD and unit.iou_label:
            iou_units += 1
            iou_by_cat.setdefault(unit.iou_category or "?", set()).add(strip_broden_suffix(unit.iou_label))
        agg = getattr(unit, "aggregate", None)
        if agg and agg.interpretable:
            crowd_units += 1
            crowd_by_cat.setdefault(normalize_category(agg.category), set()).add(agg.concept or agg.crowd_word)
    n = len(units) if isinstance(units := layer_units(layer), list) else units.count()
    return {
        "n_units": n,
        # "covering m concepts" counts each concept once, even when units gave it different categories.
        "iou": {"units": iou_units, "concepts": len(set().union(*iou_by_cat.values())),
                "by_category": {c: len(s) for c, s in sorted(iou_by_cat.items(), key=lambda kv: -len(kv[1]))}},
        "crowd": {"units": crowd_units, "concepts": len(set().union(*crowd_by_cat.values())),
                  "by_category": {c: len(s) for c, s in sorted(crowd_by_cat.items(), key=lambda kv: -len(kv[1]))}},
    }


def agreement_histogram(layer: Layer, bins: int = 10) -> list[int]:
    counts = [0] * bins
    for value in UnitAggregate.objects.filter(unit__layer=layer,
                                              n_annotations__gt=0).values_list("agreement", flat=True):
        counts[min(int(value * bins), bins - 1)] += 1
    return counts


def jobs_overview(project) -> list[dict]:
    """The project's latest 50 jobs with their HIT counts: a fixed number of queries however many jobs and HITs."""
    jobs = list(
        DissectionJob.objects.filter(project=project)
        .select_related("network", "dataset")
        .prefetch_related("layer_set")
        .order_by("-created_at")[:50]
    )
    hits = Hit.objects.filter(unit__layer__job__in=jobs)
    done = hits.annotate(
        n_done=Count("assignments", filter=Q(assignments__status__in=COUNTED_STATUSES))
    ).filter(n_done__gte=F("max_assignments"))
    totals = _hits_per_job(hits)
    done_per_job = _hits_per_job(Hit.objects.filter(pk__in=done.values("pk")))
    return [{"job": job, "hits_total": totals.get(job.pk, 0), "hits_done": done_per_job.get(job.pk, 0),
             "layers": list(job.layer_set.all())} for job in jobs]


def latest_aggregation_runs(project, limit: int = 10) -> list[AggregationRun]:
    """The latest run of each layer (or batch) of `project`, newest first: a layer aggregated again shows
    its new run in place of the old one, so the overview lists each layer once."""
    latest = (AggregationRun.objects.filter(project=project).order_by().values("layer_id", "batch_id")
              .annotate(last=Max("id"))
              .values_list("last", flat=True))
    ids = sorted(latest, reverse=True)[:limit]
    return list(AggregationRun.objects.filter(pk__in=ids).select_related("layer__job__network", "batch")
                .order_by("-id"))


def _hits_per_job(hits: QuerySet[Hit]) -> dict[int, int]:
    rows = hits.order_by().values("unit__layer__job").annotate(n=Count("id"))
    return {r["unit__layer__job"]: r["n"] for r in rows}


def assignments_per_hour(project, hours: int = 24) -> list[tuple[str, int]]:
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(hours=hours - 1)
    times = Assignment.objects.filter(submitted_at__gte=start, hit__batch__project=project).values_list(
        "submitted_at", flat=True
    )
    counts = Counter(t.replace(minute=0, second=0, microsecond=0) for t in times)
    return [((start + timedelta(hours=h)).strftime("%H:00"), counts.get(start + timedelta(hours=h), 0))
            for h in range(hours)]


def active_annotators(project, hours: int = 24) -> int:
    since = timezone.now() - timedelta(hours=hours)
    return (
        Assignment.objects.filter(Q(accepted_at__gte=since) | Q(submitted_at__gte=since), hit__batch__project=project)
        .values("worker").distinct().count()
    )


def annotators_with_work(project=None) -> QuerySet:
    """Users with submitted work (in `project`, else anywhere), by name: what the annotators page pages through."""
    done = Assignment.objects.filter(status__in=DONE_STATUSES)
    if project is not None:
        done = done.filter(hit__batch__project=project)
    done = done.values("worker_id")
    return get_user_model().objects.filter(pk__in=done).order_by("username")


def annotator_rows(workers=None, *, project=None) -> list[dict]:
    """The annotators table: counts, gold accuracy, Dawid-Skene skill, median seconds per HIT (three queries).
    `workers`: the users to show (a page of annotators_with_work()); all of them when None. With
    `project` the counts and times are of that project's HITs (gold accuracy and skill are site-wide)."""
    workers = list(annotators_with_work(project) if workers is None else workers)
    in_project = {"hit__batch__project": project} if project is not None else {}
    ids = [w.pk for w in workers]
    skills = {s.worker_id: s for s in AnnotatorSkill.objects.filter(worker_id__in=ids)}
    per_worker: dict[int, list[dict]] = {}
    for a in Assignment.objects.filter(status__in=DONE_STATUSES, worker_id__in=ids, **in_project).values(
        "worker_id", "status", "work_seconds", "accepted_at", "submitted_at"
    ):
        per_worker.setdefault(a["worker_id"], []).append(a)
    rows = []
    for worker in workers:
        assignments = per_worker.get(worker.pk, [])
        status_counts = Counter(a["status"] for a in assignments)
        # Server-measured time on task (accept to submit) when the crowd app recorded it.
        times = [
            a["work_seconds"] if a["work_seconds"] is not None
            else (a["submitted_at"] - a["accepted_at"]).total_seconds()
            for a in assignments if a["work_seconds"] is not None or a["submitted_at"]
        ]
        skill = skills.get(worker.pk)
        rows.append({
            "worker": worker,
            "submitted": len(assignments),
            "approved": status_counts.get(Assignment.Status.APPROVED, 0),
            "rejected": status_counts.get(Assignment.Status.REJECTED, 0),
            "gold_answered": skill.gold_answered if skill else 0,
            "gold_accuracy": skill.gold_accuracy if skill else None,
            "skill": skill.skill if skill else None,
            "median_seconds": statistics.median(times) if times else None,
        })
    return rows


def worker_skills(*, project, layer: Layer | None = None) -> dict[int, float]:
    """Per worker id, the skill of the published model: P(an answer of theirs is right), 0..1.

    With a layer (of `project`): the skills its latest aggregation fitted over that layer's answers.
    Without: each worker's skill from their latest aggregated layer, for workers whose latest run is
    of this project. A worker with no aggregated answer there is absent. The caller scopes `project`
    to the user (projects.access.scope); a layer of another project raises ValueError.
    """
    if layer is not None:
        if layer.job.project_id != project.pk:
            raise ValueError("The layer is not part of this project.")
        run = (AggregationRun.objects.filter(layer=layer, status=AggregationRun.Status.SUCCEEDED)
               .order_by("-started_at", "-id").first())
        stored = (run.summary or {}).get("skills", {}) if run is not None else {}
        return {int(worker): float(skill) for worker, skill in stored.items()}
    return dict(AnnotatorSkill.objects.filter(run__project=project, skill__isnull=False)
                .values_list("worker_id", "skill"))


def unit_annotations(unit: Unit) -> QuerySet[Annotation]:
    return (
        # The unit page lists labelling answers; verify answers are summed up in its layer's table.
        Annotation.objects.filter(assignment__hit__unit=unit, assignment__hit__kind=HitKind.LABEL)
        .select_related("assignment__worker").prefetch_related("non_fitting").order_by("id")
    )


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
