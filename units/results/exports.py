"""Export writers: labelled units (CSV, JSON), tally.csv with crowd columns, MTurk results CSV, MILAN archive.

Each writer takes rows from the database and a destination path and reports progress through an
optional callback (0..1), so the same code serves the page button, the command and the API.

Numbering: people see NetDissect's (units and images from 1), and so do our files: `unit` is 1-based
in the labelled units and in tally.csv (NetDissect's own column), MTurk's `Input.unit_number` and
`Answer.non_fitting_images` count from 1. Only the MILAN archive keeps MILAN's 0-based `unit`, said in
its README.txt. Words are written as stored, in UTF-8 (JSON without escapes), in any script.

Spreadsheets: the CSV files people open in Excel (labelled units, tally.csv, MTurk results) start with
a UTF-8 byte-order mark, without which Excel reads them as the local code page and garbles accents and
CJK. The MILAN archive's CSV files are read by scripts and stay plain UTF-8, as MILAN's own releases.
No cell of any CSV can run as a formula: see `neutralise`.

The MTurk file's `Input.image_urls` are absolute signed picture links built from SITE_URL
(units/crowd/picture_links.py): MTurk's workers have no session here, and a link opens only the
pictures of its HIT, until the HIT expires.
"""
from __future__ import annotations

import csv
import io
import itertools
import json
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from datetime import UTC
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone
from PIL import Image

from tasks.engine.tally import read_tally, tally_columns
from units.crowd.models import Assignment, Hit
from units.crowd.picture_links import signed_pictures
from units.dissection.models import Layer, Unit

from .models import ExportJob, UnitVerification
from .normalize import fold
from .selectors import COUNTED_STATUSES, DONE_STATUSES

Progress = Callable[[float], None] | None
# Rows fetched per database round trip: exports iterate (constant memory) instead of loading every row.
CHUNK = 2000

# `crowd_word` and `category` are the published label (aggregation.METHOD, named in `method`) with their
# calibrated probabilities; `category_mv` is the plain vote beside it.
LABELLED_COLUMNS = [
    "layer", "unit", "crowd_word", "word_probability", "concept", "category", "category_probability", "method",
    "category_mv", "category_ds", "agreement", "category_agreement",
    "precision", "interpretable", "annotations", "iou_label", "iou_category", "iou_score", "iou_interpretable",
    "word_match", "category_match",
    # Verify HITs (Network Dissection's human check): 1 accepted, 0 rejected, empty not judged; then the votes.
    "iou_verified", "iou_verify_yes", "iou_verify_no", "crowd_verified", "crowd_verify_yes", "crowd_verify_no",
]
CROWD_TALLY_COLUMNS = [
    "crowd-word", "crowd-concept", "crowd-category", "crowd-category-ds", "crowd-agreement", "crowd-precision",
    "crowd-annotations", "crowd-interpretable", "word-match", "category-match",
    "crowd-word-probability", "crowd-category-probability", "crowd-method", "crowd-category-mv",
    "verified",  # humans judged the row's IoU label descriptive (verify HITs, majority): 1, 0, or empty
]
# Kept for one release, then removed: what they held is now in the published columns.
DEPRECATED_COLUMNS = {
    "category_ds": "deprecated: equals category (the published category); removed in the next release",
    "crowd-category-ds": "deprecated: equals crowd-category (the published category); removed in the next release",
}
MTURK_COLUMNS = [
    "HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime", "MaxAssignments",
    "RequesterAnnotation", "AssignmentDurationInSeconds", "AutoApprovalDelayInSeconds", "Expiration",
    "NumberOfSimilarHITs", "LifetimeInSeconds", "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime",
    "SubmitTime", "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback", "WorkTimeInSeconds",
    "LifetimeApprovalRate", "Last30DaysApprovalRate", "Last7DaysApprovalRate",
]
MTURK_INPUTS = ["Input.unit_id", "Input.network", "Input.layer", "Input.unit_number", "Input.image_urls",
                "Input.proposed_label"]
MTURK_ANSWERS = ["Answer.word", "Answer.category", "Answer.description", "Answer.confidence",
                 "Answer.non_fitting_images", "Answer.verdict"]
MTURK_ALL_COLUMNS = MTURK_COLUMNS + MTURK_INPUTS + MTURK_ANSWERS + ["Approve", "Reject"]
MTURK_TITLE = "Name what this neural network unit detects"
MTURK_DESCRIPTION = "Look at the highlighted regions, name their common concept, mark images that do not fit."
MTURK_KEYWORDS = "image, labelling, neural network, interpretability"
MILAN_README = (
    "MILAN-style annotations. As in MILAN's releases, `unit` is the 0-based channel index (UnitCrowd's pages\n"
    "and its other exports show it plus 1) and `rank` the 0-based place among the unit's top images.\n"
)
MTURK_TIME_FORMAT = "%a %b %d %H:%M:%S UTC %Y"  # MTurk's own format, in UTC


# A spreadsheet runs a cell that starts with one of these as a formula (a tab or carriage return first
# hides the sign from a trim but not from the spreadsheet). OWASP's advice: prefix such a cell with an
# apostrophe, which makes it text. Plain numbers ("-0.5") are left as they are so columns stay numeric.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(\.\d+)?([eE][-+]?\d+)?")


def neutralise(value):
    """The cell as text a spreadsheet shows but never runs. Cells already starting with apostrophes
    before a formula sign get one more, so `unneutralise` gives back exactly what was written."""
    if isinstance(value, str) and value.lstrip("'").startswith(FORMULA_STARTS) \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def unneutralise(value: str) -> str:
    """What `neutralise` was given (imports read our own exports back)."""
    if value.startswith("'") and value[1:].lstrip("'").startswith(FORMULA_STARTS):
        return value[1:]
    return value


class SheetWriter:
    """csv.writer whose every cell goes through `neutralise`."""

    def __init__(self, fh):
        self._writer = csv.writer(fh)

    def writerow(self, row) -> None:
        self._writer.writerow([neutralise(v) for v in row])


def _fmt(value: float | None, digits: int = 4) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _flag(value: bool) -> str:
    return "1" if value else "0"


def labelled_rows(units: QuerySet[Unit]) -> Iterator[dict]:
    """One row per unit, streamed; `unit` counts from 1 like the pages and NetDissect's tally.csv."""
    verified = _verifications(units)
    for unit in units.select_related("layer", "aggregate").order_by("layer_id", "index").iterator(chunk_size=CHUNK):
        agg = getattr(unit, "aggregate", None)
        checks = verified.get(unit.pk, {})
        yield {
            "layer": unit.layer.name,
            "unit": unit.index + 1,
            "crowd_word": agg.crowd_word if agg else "",
            "word_probability": agg.word_probability if agg else None,
            "concept": agg.concept if agg else "",
            "category": agg.category if agg else "",
            "category_probability": agg.category_probability if agg else None,
            "method": agg.method if agg else "",
            "category_mv": agg.category_mv if agg else "",
            "category_ds": agg.category if agg else "",
            "agreement": agg.agreement if agg else None,
            "category_agreement": agg.category_agreement if agg else None,
            "precision": agg.precision if agg else None,
            "interpretable": bool(agg and agg.interpretable),
            "annotations": agg.n_annotations if agg else 0,
            "iou_label": unit.iou_label,
            "iou_category": unit.iou_category,
            "iou_score": unit.iou_score,
            "iou_interpretable": unit.iou_score > 0.04,
            "word_match": bool(agg and agg.word_match),
            "category_match": bool(agg and agg.category_match),
            **_verify_columns(checks, "iou"), **_verify_columns(checks, "crowd"),
        }


def _verifications(units: QuerySet[Unit]) -> dict[int, dict[str, UnitVerification]]:
    out: dict[int, dict[str, UnitVerification]] = {}
    for row in UnitVerification.objects.filter(unit__in=units).iterator(chunk_size=CHUNK):
        out.setdefault(row.unit_id, {})[row.source] = row
    return out


def _verify_columns(checks: dict[str, UnitVerification], source: str) -> dict:
    row = checks.get(source)
    return {f"{source}_verified": None if row is None else row.accepted_mv,
            f"{source}_verify_yes": row.n_yes if row else 0, f"{source}_verify_no": row.n_no if row else 0}


def write_units_csv(path: Path, units: QuerySet[Unit], progress: Progress = None) -> None:
    total = units.count() if progress else 0
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = SheetWriter(fh)
        writer.writerow(LABELLED_COLUMNS)
        for i, row in enumerate(labelled_rows(units)):
            writer.writerow([
                _fmt(v) if isinstance(v, float) else (_flag(v) if isinstance(v, bool) else ("" if v is None else v))
                for v in (row[c] for c in LABELLED_COLUMNS)
            ])
            if progress and i % 200 == 0:
                progress(i / max(total, 1))


def write_units_json(path: Path, units: QuerySet[Unit], progress: Progress = None) -> None:
    """The same bytes as json.dump(..., indent=1) of the whole document, written one unit at a time."""
    head = json.dumps({"columns": LABELLED_COLUMNS, "unit_numbering": "from 1 (NetDissect)",
                       "deprecated_columns": {k: v for k, v in DEPRECATED_COLUMNS.items() if k in LABELLED_COLUMNS},
                       "units": []},
                      indent=1, ensure_ascii=False)
    assert head.endswith('"units": []\n}')
    total = units.count() if progress else 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(head[: -len("]\n}")])
        i = -1
        for i, row in enumerate(labelled_rows(units)):
            # json.dump nests each unit two levels deep (indent=1): shift the unit's own lines by two spaces.
            fh.write(("," if i else "") + "\n  " + json.dumps(row, indent=1, ensure_ascii=False).replace("\n", "\n  "))
            if progress and i % 200 == 0:
                progress(i / max(total, 1))
        fh.write("\n ]\n}" if i >= 0 else "]\n}")


# --- tally.csv -----------------------------------------------------------------------------------

def find_layer_tally(layer: Layer) -> Path | None:
    """The tally.csv the dissection job wrote for this layer, if it is on disk."""
    if not layer.job.output_dir:
        return None
    root = Path(settings.MEDIA_ROOT) / layer.job.output_dir
    for candidate in (root / layer.name / "tally.csv", root / f"tally_{layer.name}.csv",
                      root / f"{layer.name}_tally.csv"):
        if candidate.is_file():
            return candidate
    found = [p for p in root.glob("**/*tally*.csv") if layer.name in p.relative_to(root).parts
             or p.stem in (f"tally_{layer.name}", f"tally-{layer.name}")]
    return found[0] if len(found) == 1 else None


def _tally_from_database(layer: Layer) -> tuple[list[str], list[dict]]:
    """Rebuild the tally rows from stored scores when the job's file is gone (pixel counts unknown: 0)."""
    dataset = layer.job.dataset
    categories = list(dataset.categories) or sorted(set(dataset.concepts.values_list("category", flat=True)))
    rows = []
    for unit in layer.units.prefetch_related("concept_scores__concept").iterator(chunk_size=CHUNK):
        row: dict = {"unit": unit.index + 1, "category": unit.iou_category, "label": unit.iou_label,
                     "score": unit.iou_score}
        for cat in categories:
            best = max((s for s in unit.concept_scores.all() if s.concept.category == cat), key=lambda s: s.iou,
                       default=None)
            row.update({f"{cat}-label": best.concept.name if best else "", f"{cat}-truth": 0, f"{cat}-activation": 0,
                        f"{cat}-intersect": 0, f"{cat}-iou": best.iou if best else 0.0})
        rows.append(row)
    rows.sort(key=lambda r: (-r["score"], r["unit"]))
    return tally_columns(categories), rows


def write_tally(path: Path, layer: Layer, progress: Progress = None) -> None:
    """NetDissect's tally.csv for one layer (its columns untouched), the crowd's columns appended."""
    source = find_layer_tally(layer)
    if source is not None:
        rows = read_tally(source)
        with open(source, newline="") as fh:
            header = next(csv.reader(fh))
    else:
        header, rows = _tally_from_database(layer)
    aggregates = {u.index: getattr(u, "aggregate", None)
                  for u in layer.units.select_related("aggregate").iterator(chunk_size=CHUNK)}
    iou_checks = {index: accepted for index, accepted in UnitVerification.objects.filter(
        unit__layer=layer, source="iou").values_list("unit__index", "accepted_mv")}
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = SheetWriter(fh)
        writer.writerow(header + CROWD_TALLY_COLUMNS)
        for row in rows:
            agg = aggregates.get(int(row["unit"]) - 1)
            values = [repr(float(row[c])) if (c == "score" or c.endswith("-iou")) else row[c] for c in header]
            values += [
                agg.crowd_word if agg else "", agg.concept if agg else "", agg.category if agg else "",
                agg.category if agg else "", _fmt(agg.agreement if agg else None),
                _fmt(agg.precision if agg else None), agg.n_annotations if agg else 0,
                _flag(bool(agg and agg.interpretable)), _flag(bool(agg and agg.word_match)),
                _flag(bool(agg and agg.category_match)),
                _fmt(agg.word_probability if agg else None), _fmt(agg.category_probability if agg else None),
                agg.method if agg else "", agg.category_mv if agg else "",
                "" if iou_checks.get(int(row["unit"]) - 1) is None else _flag(iou_checks[int(row["unit"]) - 1]),
            ]
            writer.writerow(values)


# --- Mechanical Turk results CSV --------------------------------------------------------------------

def _mturk_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime(MTURK_TIME_FORMAT) if value else ""


def _rate(counter: Counter) -> str:
    decided = counter["approved"] + counter["rejected"]
    share = 100 * counter["approved"] // decided if decided else 0
    return f"{share}% ({counter['approved']}/{decided})"


def _approval_rates(worker_ids: set[int]) -> dict[int, dict[str, str]]:
    now = timezone.now()
    windows = {"LifetimeApprovalRate": None, "Last30DaysApprovalRate": 30, "Last7DaysApprovalRate": 7}
    rows = Assignment.objects.filter(worker_id__in=worker_ids, status__in=DONE_STATUSES).values(
        "worker_id", "status", "submitted_at").iterator(chunk_size=CHUNK)
    counters: dict[int, dict[str, Counter]] = {w: {k: Counter() for k in windows} for w in worker_ids}
    for r in rows:
        for key, days in windows.items():
            if days is None or (r["submitted_at"] and (now - r["submitted_at"]).days < days):
                counters[r["worker_id"]][key][r["status"]] += 1
    return {w: {k: _rate(c) for k, c in per.items()} for w, per in counters.items()}


def mturk_assignments(hits: QuerySet[Hit] | list[int]) -> QuerySet[Assignment]:
    return (
        Assignment.objects.filter(hit__in=hits, status__in=DONE_STATUSES)
        .select_related("hit__unit__layer__job__network", "hit__batch", "worker", "annotation")
        .prefetch_related("annotation__non_fitting", "hit__unit__exemplars")
        .order_by("hit_id", "id")
    )


# HITs per query of the MTurk export's stream. One server-side cursor over `hit_id IN (subquery)`
# made PostgreSQL pick a fast-start plan that ran the subquery per row: at 100,000 answers it had
# not returned after 20 minutes. A few hundred HIT ids per query is a plain index lookup everywhere.
MTURK_HIT_CHUNK = 500


def _mturk_stream(hits: QuerySet[Hit]):
    """The export's assignments in (hit, id) order, read MTURK_HIT_CHUNK HITs at a time."""
    ids = hits.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=CHUNK)
    while chunk := list(itertools.islice(ids, MTURK_HIT_CHUNK)):
        yield from mturk_assignments(chunk)


def write_mturk(path: Path, hits: QuerySet[Hit], progress: Progress = None) -> None:
    query = mturk_assignments(hits)
    # The workers (few) are read up front for their approval rates; the assignments (many) are streamed.
    rates = _approval_rates(set(query.order_by().values_list("worker_id", flat=True).distinct()))
    total = query.count() if progress else 0
    assignments = _mturk_stream(hits)
    with open(path, "w", newline="", encoding="utf-8-sig") as fh:
        writer = SheetWriter(fh)
        writer.writerow(MTURK_ALL_COLUMNS)
        links_of: tuple[int | None, str] = (None, "")  # one HIT's picture links, signed once for its rows
        for i, a in enumerate(assignments):
            hit, unit = a.hit, a.hit.unit
            ann = getattr(a, "annotation", None)
            if hit.pk != links_of[0]:
                top = [e for e in unit.exemplars.all() if e.kind == "top"][: hit.exemplars_shown]
                links_of = (hit.pk, "|".join(p.picture_url for p in signed_pictures(
                    hit, top, expires_at=hit.expires_at, absolute=True)))
            row = {
                "HITId": str(hit.pk), "HITTypeId": f"unitcrowd-batch-{hit.batch_id}", "Title": MTURK_TITLE,
                "Description": MTURK_DESCRIPTION, "Keywords": MTURK_KEYWORDS, "Reward": f"${hit.reward:.2f}",
                "CreationTime": _mturk_time(hit.created_at), "MaxAssignments": hit.max_assignments,
                "RequesterAnnotation": f"BatchId:{hit.batch_id};", "AssignmentDurationInSeconds":
                hit.assignment_duration_seconds, "AutoApprovalDelayInSeconds": hit.auto_approval_delay_seconds,
                "Expiration": _mturk_time(hit.expires_at), "NumberOfSimilarHITs": "",
                "LifetimeInSeconds": hit.lifetime_seconds, "AssignmentId": str(a.pk), "WorkerId": a.worker.username,
                "AssignmentStatus": a.status.capitalize(), "AcceptTime": _mturk_time(a.accepted_at),
                "SubmitTime": _mturk_time(a.submitted_at), "AutoApprovalTime": _mturk_time(a.auto_approve_at),
                "ApprovalTime": _mturk_time(a.approved_at), "RejectionTime": _mturk_time(a.rejected_at),
                "RequesterFeedback": a.feedback, "WorkTimeInSeconds": _work_seconds(a),
                **rates[a.worker_id],
                "Input.unit_id": unit.pk, "Input.network": unit.layer.job.network.name,
                "Input.layer": unit.layer.name, "Input.unit_number": unit.index + 1,
                "Input.image_urls": links_of[1],
                "Input.proposed_label": hit.proposed_label, "Answer.verdict": ann.verdict if ann else "",
                "Answer.word": ann.word if ann else "", "Answer.category": ann.category if ann else "",
                "Answer.description": ann.description if ann else "",
                "Answer.confidence": (ann.confidence or "") if ann else "",
                "Answer.non_fitting_images": "|".join(
                    str(e.rank + 1) for e in sorted(ann.non_fitting.all(), key=lambda e: e.rank) if e.kind == "top"
                ) if ann else "",
                "Approve": "x" if a.status == Assignment.Status.APPROVED else "",
                "Reject": (a.feedback or "rejected") if a.status == Assignment.Status.REJECTED else "",
            }
            writer.writerow([row[c] for c in MTURK_ALL_COLUMNS])
            if progress and i % 200 == 0:
                progress(i / max(total, 1))


def _work_seconds(a: Assignment) -> int | str:
    if a.work_seconds is not None:
        return int(round(a.work_seconds))
    if a.submitted_at:
        return int(round((a.submitted_at - a.accepted_at).total_seconds()))
    return ""


# --- MILAN-style archive ----------------------------------------------------------------------------

def exemplar_mask(picture: Path, plain: Path) -> Image.Image:
    """Recover the highlight mask from the NetDissect overlay (outside the mask is dimmed to 20%).

    A pixel is inside when the overlay keeps at least 60% of the plain image's brightness; pure black
    pixels carry no evidence and count as outside.
    """
    pic = np.asarray(Image.open(picture).convert("RGB"), dtype=np.float32).sum(axis=2)
    base = np.asarray(Image.open(plain).convert("RGB").resize(Image.open(picture).size), dtype=np.float32).sum(axis=2)
    mask = (base > 0) & (pic >= 0.6 * base)
    return Image.fromarray((mask * 255).astype(np.uint8), mode="L")


def write_milan(path: Path, units: QuerySet[Unit], progress: Progress = None) -> None:
    """annotations.csv (layer,unit,summary; one row per counted annotation) plus per layer the exemplar
    images, their masks and exemplars.csv (unit,rank,image_index,image_name,image,mask)."""
    from units.crowd.models import Annotation

    media = Path(settings.MEDIA_ROOT)
    total = units.count() if progress else 0
    annotations = (
        Annotation.objects.filter(assignment__hit__unit__in=units, assignment__status__in=COUNTED_STATUSES,
                                  assignment__hit__kind="label")
        .select_related("assignment__hit__unit__layer").order_by("assignment__hit__unit__layer_id",
                                                                 "assignment__hit__unit__index", "id")
        .only("word", "description", "assignment__hit__unit__index", "assignment__hit__unit__layer__name")
    )
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        # Written into the archive as the rows arrive (force_zip64: the size is not known in advance).
        with zf.open("annotations.csv", "w", force_zip64=True) as raw, \
                io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            writer = SheetWriter(text)
            writer.writerow(["layer", "unit", "summary"])
            for ann in annotations.iterator(chunk_size=CHUNK):
                unit = ann.assignment.hit.unit
                writer.writerow([unit.layer.name, unit.index, fold(ann.description or ann.word).strip()])
        zf.writestr("README.txt", MILAN_README)
        per_layer: dict[str, io.StringIO] = {}
        units = units.select_related("layer").prefetch_related("exemplars").order_by("layer_id", "index")
        for i, unit in enumerate(units.iterator(chunk_size=200)):
            listing = per_layer.setdefault(unit.layer.name, io.StringIO())
            lw = SheetWriter(listing)
            if listing.tell() == 0:
                lw.writerow(["unit", "rank", "image_index", "image_name", "image", "mask"])
            for ex in unit.exemplars.all():
                if ex.kind != "top":
                    continue
                picture, plain = media / ex.picture, media / (ex.plain or ex.picture)
                # The image keeps its own format (the engine writes JPEG exemplars): a .png name on JPEG
                # bytes breaks readers that trust the extension. Masks are always PNG (lossless).
                suffix = plain.suffix.lower() or ".png"
                stem = f"unit{unit.index:04d}_{ex.rank:02d}"
                image_name = f"{unit.layer.name}/images/{stem}{suffix}"
                mask_name = f"{unit.layer.name}/masks/{stem}.png"
                if plain.is_file() and picture.is_file():
                    zf.write(plain, image_name)
                    buf = io.BytesIO()
                    exemplar_mask(picture, plain).save(buf, format="PNG")
                    zf.writestr(mask_name, buf.getvalue())
                else:
                    image_name = mask_name = ""  # picture missing on disk: listed, not packed
                lw.writerow([unit.index, ex.rank, ex.image_index, ex.image_name, image_name, mask_name])
            if progress and i % 20 == 0:
                progress(i / max(total, 1))
        for layer_name, listing in per_layer.items():
            zf.writestr(f"{layer_name}/exemplars.csv", listing.getvalue())


# --- running an ExportJob ------------------------------------------------------------------------

EXTENSIONS = {"units_csv": "csv", "units_json": "json", "tally": "csv", "mturk": "csv", "milan": "zip"}


def export_units(export: ExportJob) -> QuerySet[Unit]:
    if export.layer_id:
        return Unit.objects.filter(layer_id=export.layer_id)
    if export.job_id:
        return Unit.objects.filter(layer__job_id=export.job_id)
    # distinct: a verify batch holds up to one HIT per label source of a unit.
    return Unit.objects.filter(hits__batch_id=export.batch_id).distinct()


def export_hits(export: ExportJob) -> QuerySet[Hit]:
    if export.batch_id:
        return Hit.objects.filter(batch_id=export.batch_id)
    return Hit.objects.filter(unit__in=export_units(export))


def export_filename(export: ExportJob, when: datetime | None = None) -> str:
    """e.g. `tally_net3-conv3_2026-11-29_0712.csv`: what it is, of what, when."""
    when = (when or timezone.now()).astimezone(UTC)
    if export.layer_id:
        scope = f"{export.layer.job.network.name}-{export.layer.name}"
    elif export.job_id:
        scope = f"job{export.job_id}"
    else:
        scope = f"batch{export.batch_id}"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in scope)
    return f"{export.kind}_{safe}_{when:%Y-%m-%d_%H%M%S}_{export.pk}.{EXTENSIONS[export.kind]}"


def export_write(export: ExportJob, destination: Path, progress: Progress = None) -> None:
    kind = export.kind
    if kind == ExportJob.Kind.UNITS_CSV:
        write_units_csv(destination, export_units(export), progress)
    elif kind == ExportJob.Kind.UNITS_JSON:
        write_units_json(destination, export_units(export), progress)
    elif kind == ExportJob.Kind.TALLY:
        write_tally(destination, export.layer, progress)
    elif kind == ExportJob.Kind.MTURK:
        write_mturk(destination, export_hits(export), progress)
    elif kind == ExportJob.Kind.MILAN:
        write_milan(destination, export_units(export), progress)
    else:
        raise ValueError(f"unknown export kind {kind!r}")
