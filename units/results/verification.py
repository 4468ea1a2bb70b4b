"""Verify HITs on the results side: store each proposed label's verdict (write) and read the per-layer
human-judged precision table, IoU labels beside the crowd's (CVPR 2017's human evaluation).

The write runs inside `services.aggregation_run_layer`, so whatever re-aggregates a layer (a finished
HIT, a rejection, the periodic safety net, the requester's button) refreshes the verdicts too.
"""
from __future__ import annotations

from django.db import transaction

from units.crowd.models import Annotation, HitKind, LabelSource
from units.dissection.models import Layer

from . import verdicts
from .models import AggregationRun, UnitVerification
from .selectors import COUNTED_STATUSES

# The sources the table compares, in the paper's order; requesters' own labels get a row when present.
TABLE_SOURCES = [LabelSource.IOU.value, LabelSource.CROWD.value, LabelSource.REQUESTER.value]


def layer_verdicts(layer: Layer) -> tuple[list[verdicts.Verdict], dict[int, tuple[int, str, str]]]:
    """Counted verify answers of a layer, and per HIT (unit id, label source, proposed label)."""
    rows = (Annotation.objects.filter(assignment__hit__unit__layer=layer, assignment__hit__kind=HitKind.VERIFY,
                                      assignment__status__in=COUNTED_STATUSES)
            .exclude(verdict="")
            .values_list("assignment__hit_id", "assignment__worker_id", "verdict", "assignment__hit__unit_id",
                         "assignment__hit__label_source", "assignment__hit__proposed_label")
            .order_by("id"))
    answers, hits = [], {}
    for hit_id, worker_id, verdict, unit_id, source, label in rows:
        answers.append(verdicts.Verdict(task=hit_id, worker=worker_id, verdict=verdict))
        hits[hit_id] = (unit_id, source, label)
    return answers, hits


@transaction.atomic
def verification_run_layer(*, layer: Layer, run: AggregationRun | None = None) -> list[dict]:
    """Aggregate a layer's verify answers into `UnitVerification` rows (idempotent); returns the table."""
    answers, hits = layer_verdicts(layer)
    result = verdicts.aggregate_verdicts(answers)
    kept = []
    for hit_id, res in result.tasks.items():
        unit_id, source, label = hits[hit_id]
        row, _ = UnitVerification.objects.update_or_create(unit_id=unit_id, source=source, defaults={
            "label": label, "run": run, "n_yes": res.n_yes, "n_no": res.n_no, "n_unsure": res.n_unsure,
            "accepted_mv": res.accepted_mv, "accepted_ds": res.accepted_ds, "ds_probability": res.ds_probability,
            "agreement": res.agreement, "project_id": layer.job.project_id,
        })
        kept.append(row.pk)
    # Verdicts whose answers were all rejected since the last run disappear with them.
    UnitVerification.objects.filter(unit__layer=layer).exclude(pk__in=kept).delete()
    return verification_table(layer)


STORED_FIELDS = ("source", "n_yes", "n_no", "n_unsure", "accepted_mv", "accepted_ds", "agreement")


def stored_verifications(layers: list[Layer]) -> dict[int, list[tuple]]:
    """layer id -> its stored verdict rows, for a page of layers in one query (see verification_table)."""
    out: dict[int, list[tuple]] = {layer.pk: [] for layer in layers}
    for layer_id, *row in UnitVerification.objects.filter(unit__layer__in=layers).values_list(
            "unit__layer_id", *STORED_FIELDS):
        out[layer_id].append(tuple(row))
    return out


def verification_table(layer: Layer, stored: list[tuple] | None = None) -> list[dict]:
    """Per label source: units judged, labels accepted (majority vote, Dawid-Skene), precision, unsure answers,
    human consistency. Sources without a verify HIT on this layer are left out, except IoU and crowd.
    `stored`: this layer's rows from stored_verifications, when a caller fetched many layers at once."""
    if stored is None:
        stored = UnitVerification.objects.filter(unit__layer=layer).values_list(*STORED_FIELDS)
    results = [(source, verdicts.VerdictResult(task=None, n_yes=y, n_no=n, n_unsure=u, accepted_mv=mv,
                                               accepted_ds=ds, agreement=agreement))
               for source, y, n, u, mv, ds, agreement in stored]
    present = {source for source, _ in results}
    sources = [s for s in TABLE_SOURCES if s in (LabelSource.IOU, LabelSource.CROWD) or s in present]
    return [row.as_dict() for row in verdicts.precision_table(results, sources)]


def unit_verifications(layer: Layer) -> dict[int, dict[str, UnitVerification]]:
    """unit id -> source -> its verification, for the layer page and the exports."""
    out: dict[int, dict[str, UnitVerification]] = {}
    for row in UnitVerification.objects.filter(unit__layer=layer):
        out.setdefault(row.unit_id, {})[row.source] = row
    return out
