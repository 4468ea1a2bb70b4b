"""Imports: a NetDissect tally.csv as a layer's automatic labels; a Mechanical Turk results CSV as annotations."""
from __future__ import annotations

import csv
from datetime import datetime, timedelta
from datetime import UTC
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from tasks.engine.errors import EngineError
from tasks.engine.tally import read_tally, tally_categories
from units.crowd.models import CATEGORY_CHOICES, Annotation, Assignment, Hit, HitBatch
from units.crowd.validation import clean_word, validate_answer
from units.dissection.models import Concept, Layer, Unit, UnitConceptScore

from .exports import MTURK_TIME_FORMAT, unneutralise
from .normalize import normalize_category
from .errors import ResultsError

CATEGORIES = {key for key, _ in CATEGORY_CHOICES}
MTURK_STATUSES = {"submitted": Assignment.Status.SUBMITTED, "approved": Assignment.Status.APPROVED,
                  "rejected": Assignment.Status.REJECTED}
MTURK_WORKER_PREFIX = "mturk-"


def tally_import(*, path: str | Path, layer: Layer) -> int:
    """Set each unit's automatic label (and best concept per category) from a tally.csv; returns units updated."""
    path = Path(path)
    try:
        rows = read_tally(path)
    except (EngineError, ValueError, KeyError) as exc:
        # The file is a server-side temporary copy of an upload: its folder means nothing to the user.
        raise ResultsError(f"{path.name}: cannot read it as a NetDissect tally.csv "
                           f"({str(exc).replace(str(path), path.name)}).") from None
    except OSError as exc:
        raise ResultsError(f"{path.name}: cannot open the file ({exc.strerror}).") from None
    categories = tally_categories(rows) if rows else []
    concepts = {c.name: c for c in Concept.objects.filter(dataset=layer.job.dataset)}
    units = {u.index: u for u in layer.units.all()}
    with transaction.atomic():
        for line, row in enumerate(rows, start=2):
            index = row["unit"] - 1
            if index not in units:
                raise ResultsError(
                    f"{path.name} line {line}: unit {row['unit']} does not exist in layer {layer.name} "
                    f"(it has units 1..{layer.num_units}); is this the tally of another layer?"
                )
            unit = units[index]
            unit.iou_label, unit.iou_category, unit.iou_score = row["label"], row["category"], float(row["score"])
            unit.save(update_fields=["iou_label", "iou_category", "iou_score"])
            scores = sorted(
                ((row[f"{cat}-iou"], concepts[row[f"{cat}-label"]]) for cat in categories
                 if row.get(f"{cat}-label") in concepts),
                key=lambda pair: -pair[0],
            )
            UnitConceptScore.objects.filter(unit=unit).delete()
            UnitConceptScore.objects.bulk_create([
                UnitConceptScore(unit=unit, concept=concept, rank=rank, iou=iou)
                for rank, (iou, concept) in enumerate(dict((c.pk, (i, c)) for i, c in scores).values())
            ])
    return len(rows)


def _parse_time(value: str) -> datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    for fmt in (MTURK_TIME_FORMAT, "%a %b %d %H:%M:%S %Z %Y", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S"):
        try:
            parsed = datetime.strptime(value, fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _worker(worker_id: str):
    User = get_user_model()
    user, created = User.objects.get_or_create(username=f"{MTURK_WORKER_PREFIX}{worker_id}"[:150])
    if created:
        user.set_unusable_password()  # imported workers never sign in here
        user.save(update_fields=["password"])
    return user


def mturk_import(*, path: str | Path, layer: Layer, user=None) -> dict:
    """Read a results CSV (ours or MTurk's, with Input.unit and Answer.* columns) into HITs and annotations.

    The unit is `Input.unit_number` (from 1, as our exports write it) or, in older files, `Input.unit`
    (from 0); the marked images likewise `Answer.non_fitting_images` (from 1) or `Answer.non_fitting` (from 0).

    Rows already imported (same HIT and worker) are skipped, so importing a file twice is harmless.
    A word annotators could not have typed (the crowd form's own check, `crowd.validation`) refuses its row
    only: it is counted in "invalid" with its line in "invalid_lines", and the other rows are imported.
    Returns {"rows", "created", "skipped", "invalid", "invalid_lines"}.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            # Our exports prefix formula-like cells with an apostrophe (exports.neutralise): undone here.
            rows = [{k: unneutralise(v) if isinstance(v, str) else v for k, v in r.items()} for r in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ResultsError(f"{path.name}: cannot read the CSV ({exc}).") from None
    # Whichever numbering the file names, rows are read in 0-based indexes from here on.
    unit_column, unit_base = ("Input.unit_number", 1) if "Input.unit_number" in header else ("Input.unit", 0)
    marks_column, marks_base = (("Answer.non_fitting_images", 1) if "Answer.non_fitting_images" in header
                                else ("Answer.non_fitting", 0))
    required = ["WorkerId", "AssignmentStatus", unit_column, "Answer.category"]
    missing = [c for c in required if c not in header]
    if missing:
        raise ResultsError(
            f"{path.name}: missing column(s) {', '.join(missing)}; a Mechanical Turk results CSV with the unit's "
            "number in Input.unit_number (from 1) or Input.unit (from 0) and the answers in Answer.word / "
            "Answer.category is expected."
        )
    units = {u.index: u for u in layer.units.all()}
    now = timezone.now()
    created = skipped = 0
    invalid_lines: list[int] = []
    with transaction.atomic():
        batch = HitBatch.objects.create(project_id=layer.job.project_id, name=f"imported from {path.name}"[:200],
                                        created_by=user)
        batch.layers.add(layer)
        for line, row in enumerate(rows, start=2):
            where = f"{path.name} line {line}"
            try:
                index = int(row[unit_column]) - unit_base
            except ValueError:
                raise ResultsError(f"{where}: {unit_column} {row[unit_column]!r} is not a unit number.") from None
            if index not in units:
                raise ResultsError(f"{where}: layer {layer.name} has no unit {index + unit_base} "
                                   f"({unit_base}..{layer.num_units - 1 + unit_base} in {unit_column}).")
            if "Input.layer" in row and row["Input.layer"] and row["Input.layer"] != layer.name:
                raise ResultsError(f"{where}: the row is for layer {row['Input.layer']!r}, not {layer.name!r}.")
            # Labels collected elsewhere often use Broden's/ICLR 2015's names ("material", "surface").
            category = normalize_category(row["Answer.category"])
            if category not in CATEGORIES:
                raise ResultsError(f"{where}: Answer.category {category!r} is not one of "
                                   f"{', '.join(sorted(CATEGORIES))}.")
            status = MTURK_STATUSES.get(row["AssignmentStatus"].strip().lower())
            if status is None:
                raise ResultsError(f"{where}: AssignmentStatus {row['AssignmentStatus']!r} is not Submitted, Approved "
                                   f"or Rejected.")
            worker_id = row["WorkerId"].strip()
            if not worker_id:
                raise ResultsError(f"{where}: WorkerId is empty.")
            unit: Unit = units[index]
            hit = Hit.objects.filter(unit=unit, kind="label").first() or Hit.objects.create(
                batch=batch, unit=unit, max_assignments=int(row.get("MaxAssignments") or 3),
                expires_at=_parse_time(row.get("Expiration", "")) or now, status=Hit.Status.REVIEWABLE,
            )
            # Already here: imported before, or this is our own export read back into the layer it came
            # from (WorkerId is then a local username); either way importing it again would double-count.
            if Assignment.objects.filter(
                hit__unit=unit, worker__username__in=[worker_id, f"{MTURK_WORKER_PREFIX}{worker_id}"[:150]]
            ).exists():
                skipped += 1
                continue
            # The same rule as the annotators' form: an imported word ends up in the same results and exports.
            word = clean_word(row.get("Answer.word", ""))
            if validate_answer(word=word, category=category, description="", confidence=None).get("word"):
                invalid_lines.append(line)
                continue
            worker = _worker(worker_id)
            accepted = _parse_time(row.get("AcceptTime", "")) or now
            submitted = _parse_time(row.get("SubmitTime", "")) or accepted
            work = row.get("WorkTimeInSeconds", "").strip()
            assignment = Assignment.objects.create(
                hit=hit, worker=worker, status=status, accepted_at=accepted,
                deadline=accepted + timedelta(seconds=hit.assignment_duration_seconds), submitted_at=submitted,
                approved_at=_parse_time(row.get("ApprovalTime", "")),
                rejected_at=_parse_time(row.get("RejectionTime", "")),
                feedback=row.get("RequesterFeedback", ""), work_seconds=float(work) if work else None,
            )
            confidence = row.get("Answer.confidence", "").strip()
            annotation = Annotation.objects.create(
                assignment=assignment, word=word, category=category,
                description=row.get("Answer.description", "")[:1000],
                confidence=int(confidence) if confidence.isdigit() else None,
            )
            ranks = [int(r) - marks_base for r in row.get(marks_column, "").split("|") if r.strip().isdigit()]
            if ranks:
                annotation.non_fitting.set(unit.exemplars.filter(kind="top", rank__in=ranks))
            created += 1
        if not batch.hits.exists():
            batch.delete()  # every row was already known: leave no empty batch behind
    return {"rows": len(rows), "created": created, "skipped": skipped, "invalid": len(invalid_lines),
            "invalid_lines": invalid_lines}
