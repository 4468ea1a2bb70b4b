"""Every export parsed back and checked column by column; imports of tally.csv and MTurk results."""
import csv
import io
import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.crowd.models import Annotation, Assignment
from units.dissection.models import Unit
from units.results.exports import (
    CROWD_TALLY_COLUMNS, exemplar_mask, write_milan, write_mturk, write_tally,
    write_units_csv, write_units_json,
)
from units.results.imports import mturk_import, tally_import
from units.results.models import ExportJob, UnitAggregate
from units.results.errors import ResultsError
from units.results.services import aggregation_run_layer, export_create

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]

# NetDissect-Lite's tally.csv columns, written out independently of the engine's writer.
REFERENCE_CATEGORIES = ["object", "material"]
REFERENCE_TALLY = ["unit", "category", "label", "score"] + [
    f"{c}-{k}" for c in REFERENCE_CATEGORIES for k in ("label", "truth", "activation", "intersect", "iou")
]
# Mechanical Turk's batch results CSV columns.
REFERENCE_MTURK = [
    "HITId", "HITTypeId", "Title", "Description", "Keywords", "Reward", "CreationTime", "MaxAssignments",
    "RequesterAnnotation", "AssignmentDurationInSeconds", "AutoApprovalDelayInSeconds", "Expiration",
    "NumberOfSimilarHITs", "LifetimeInSeconds", "AssignmentId", "WorkerId", "AssignmentStatus", "AcceptTime",
    "SubmitTime", "AutoApprovalTime", "ApprovalTime", "RejectionTime", "RequesterFeedback", "WorkTimeInSeconds",
    "LifetimeApprovalRate", "Last30DaysApprovalRate", "Last7DaysApprovalRate",
]


def read_reference_tally(path):
    """A tally.csv reader that knows only the reference layout: the first 4 + 5 per category columns."""
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    n_cats = (len([h for h in header if h.endswith("-label")]))
    base = 4 + 5 * n_cats
    return header[:base], header[base:], [dict(zip(header, r)) for r in body]


@pytest.fixture
def labelled(media_root):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4, write_pictures=True,
                   concepts=[("dog", "object"), ("wood", "material"), ("sky-s", "object")])
    hits = make_hits(job)
    a, b, c = make_user("ann1"), make_user("ann2"), make_user("ann3")
    answer(hits[0], a, "dogs", "object", non_fitting=(1,), description="Dogs, mostly faces")
    answer(hits[0], b, "dog", "object", status=Assignment.Status.APPROVED)
    answer(hits[0], c, "cat", "object", status=Assignment.Status.REJECTED)
    answer(hits[1], a, "<script>alert(1)</script>", "texture", non_fitting=(0, 1, 2))
    layer = job.layer_set.get()
    aggregation_run_layer(layer=layer, adapt=False)
    return job, layer, hits


def test_labelled_units_csv_and_json_hold_every_column(labelled, tmp_path):
    job, layer, hits = labelled
    units = Unit.objects.filter(layer=layer)
    write_units_csv(tmp_path / "u.csv", units)
    write_units_json(tmp_path / "u.json", units)
    with open(tmp_path / "u.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    doc = json.loads((tmp_path / "u.json").read_text())
    assert len(rows) == len(doc["units"]) == 3
    first = rows[0]
    stored = UnitAggregate.objects.get(unit__layer=layer, unit__index=0)
    assert 0.5 < stored.word_probability <= 1 and 0.5 < stored.category_probability <= 1
    assert first == {
        "layer": "conv3", "unit": "1", "crowd_word": "dog", "word_probability": f"{stored.word_probability:.4f}",
        "concept": "dog", "category": "object", "category_probability": f"{stored.category_probability:.4f}",
        "method": "one-coin-ds", "category_mv": "object", "category_ds": "object", "agreement": "1.0000",
        "category_agreement": "1.0000", "precision": "0.8750",
        "interpretable": "1", "annotations": "2", "iou_label": "dog", "iou_category": "object",
        "iou_score": "0.0200", "iou_interpretable": "0", "word_match": "1", "category_match": "1",
        # no verify HIT was answered: not judged, no votes
        "iou_verified": "", "iou_verify_yes": "0", "iou_verify_no": "0",
        "crowd_verified": "", "crowd_verify_yes": "0", "crowd_verify_no": "0",
    }
    assert doc["units"][0]["precision"] == pytest.approx((0.75 + 1.0) / 2)
    assert doc["units"][0]["category_probability"] == stored.category_probability
    assert "category_ds" in doc["deprecated_columns"]
    assert doc["units"][1]["crowd_word"] == "script alert 1 /script"
    assert rows[2]["crowd_word"] == "" and rows[2]["annotations"] == "0" and rows[2]["interpretable"] == "0"


def _write_original_tally(path, layer):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(REFERENCE_TALLY)
        w.writerow([2, "material", "wood", "0.0612", "sky-s", 50, 40, 3, "0.01", "wood", 70, 30, 9, "0.0612"])
        w.writerow([1, "object", "dog", "0.05", "dog", 100, 20, 7, "0.05", "", 0, 0, 0, "0.0"])
        w.writerow([3, "object", "sky-s", "0.01", "sky-s", 50, 10, 1, "0.01", "wood", 70, 5, 1, "0.005"])


def test_tally_keeps_netdissects_columns_and_appends_the_crowds(labelled, tmp_path, media_root):
    job, layer, hits = labelled
    job.output_dir = f"jobs/{job.pk}"
    job.save(update_fields=["output_dir"])
    (media_root / job.output_dir / "conv3").mkdir(parents=True, exist_ok=True)
    _write_original_tally(media_root / job.output_dir / "conv3" / "tally.csv", layer)
    write_tally(tmp_path / "t.csv", layer)
    base, extra, rows = read_reference_tally(tmp_path / "t.csv")
    assert base == REFERENCE_TALLY
    assert extra == CROWD_TALLY_COLUMNS
    assert [r["unit"] for r in rows] == ["2", "1", "3"]  # the original's order (score, descending)
    wood = rows[0]
    assert (wood["label"], wood["material-truth"], wood["material-activation"], wood["material-intersect"]) == (
        "wood", "70", "30", "9")
    assert float(wood["material-iou"]) == 0.0612
    assert (wood["crowd-category"], wood["crowd-annotations"], wood["crowd-interpretable"]) == ("texture", "1", "0")
    dog = rows[1]
    assert (dog["crowd-word"], dog["crowd-category"], dog["crowd-agreement"], dog["crowd-precision"]) == (
        "dog", "object", "1.0000", "0.8750")
    assert (dog["crowd-interpretable"], dog["word-match"], dog["category-match"]) == ("1", "1", "1")


def test_tally_is_rebuilt_from_stored_scores_when_the_jobs_file_is_gone(labelled, tmp_path):
    job, layer, hits = labelled
    job.dataset.categories = REFERENCE_CATEGORIES
    job.dataset.save(update_fields=["categories"])
    write_tally(tmp_path / "t.csv", layer)
    base, extra, rows = read_reference_tally(tmp_path / "t.csv")
    assert base == REFERENCE_TALLY and extra == CROWD_TALLY_COLUMNS
    assert [r["unit"] for r in rows] == ["3", "2", "1"]  # scores 0.06, 0.04, 0.02
    assert rows[2]["object-label"] == "dog" and float(rows[2]["object-iou"]) == 0.02
    assert rows[1]["material-label"] == "wood"


def test_mturk_results_csv_has_the_reference_columns_and_one_row_per_finished_assignment(labelled, tmp_path):
    job, layer, hits = labelled
    from units.crowd.models import Hit

    write_mturk(tmp_path / "m.csv", Hit.objects.filter(unit__layer=layer))
    with open(tmp_path / "m.csv", newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header, rows = reader.fieldnames, list(reader)
    assert header[: len(REFERENCE_MTURK)] == REFERENCE_MTURK
    # the verify HITs add Input.proposed_label and Answer.verdict
    assert [h.split(".")[0] for h in header[len(REFERENCE_MTURK):-2]] == ["Input"] * 6 + ["Answer"] * 6
    assert header[-2:] == ["Approve", "Reject"]
    assert len(rows) == 4
    by_worker = {(r["HITId"], r["WorkerId"]): r for r in rows}
    first = by_worker[(str(hits[0].pk), "ann1")]
    assert (first["AssignmentStatus"], first["Answer.word"],
            first["Answer.category"]) == ("Submitted", "dogs", "object")
    assert first["Answer.non_fitting_images"] == "2"  # rank 1 is the second image shown
    assert first["Answer.description"] == "Dogs, mostly faces"
    assert (first["Input.layer"], first["Input.unit_number"], first["MaxAssignments"], first["Reward"]) == (
        "conv3", "1", "3", "$0.05")
    assert first["WorkTimeInSeconds"] == "60"
    urls = first["Input.image_urls"].split("|")
    assert len(urls) == 4 and all(u.startswith("http://127.0.0.1:8000/") for u in urls)
    assert first["LifetimeApprovalRate"] == "0% (0/0)"
    approved = by_worker[(str(hits[0].pk), "ann2")]
    assert (approved["AssignmentStatus"], approved["Approve"], approved["Reject"]) == ("Approved", "x", "")
    assert approved["LifetimeApprovalRate"] == "100% (1/1)"
    rejected = by_worker[(str(hits[0].pk), "ann3")]
    assert (rejected["AssignmentStatus"], rejected["Approve"], rejected["Reject"]) == ("Rejected", "", "too vague")


def test_the_mturk_export_read_a_few_hits_at_a_time_writes_the_same_rows_in_the_same_order(
        labelled, tmp_path, monkeypatch):
    from units.crowd.models import Hit
    from units.results import exports

    job, layer, hits = labelled
    write_mturk(tmp_path / "whole.csv", Hit.objects.filter(unit__layer=layer))
    monkeypatch.setattr(exports, "MTURK_HIT_CHUNK", 1)  # every HIT its own query
    write_mturk(tmp_path / "chunked.csv", Hit.objects.filter(unit__layer=layer))
    whole = (tmp_path / "whole.csv").read_text()
    assert whole == (tmp_path / "chunked.csv").read_text()
    ids = [row["AssignmentId"] for row in csv.DictReader(io.StringIO(whole))]
    expected = Assignment.objects.filter(hit__unit__layer=layer, status__in=exports.DONE_STATUSES).order_by(
        "hit_id", "id").values_list("pk", flat=True)
    assert ids == [str(pk) for pk in expected] and len(ids) == 4


def test_an_mturk_csv_imports_back_into_another_layer_as_the_same_answers(labelled, tmp_path):
    job, layer, hits = labelled
    from units.crowd.models import Hit

    write_mturk(tmp_path / "m.csv", Hit.objects.filter(unit__layer=layer))
    other = make_job(layers={"conv3": 3}, exemplars_per_unit=4).layer_set.get()
    counts = mturk_import(path=tmp_path / "m.csv", layer=other)
    # The "<script>alert(1)</script>" word (stored directly by the fixture, never through the form) is refused
    # by the annotators' own word rule, counted with its line; the other rows come in.
    rows = csv.DictReader((tmp_path / "m.csv").read_text(encoding="utf-8-sig").splitlines())
    script_line = 2 + [r["Answer.word"] for r in rows].index("<script>alert(1)</script>")
    assert counts == {"rows": 4, "created": 3, "skipped": 0, "invalid": 1, "invalid_lines": [script_line]}
    assert mturk_import(path=tmp_path / "m.csv", layer=other) == {
        "rows": 4, "created": 0, "skipped": 3, "invalid": 1, "invalid_lines": [script_line]}
    assert not Annotation.objects.filter(assignment__hit__unit__layer=other, word__contains="script").exists()
    imported = Annotation.objects.filter(assignment__hit__unit__layer=other).order_by("id")
    original = Annotation.objects.filter(assignment__hit__unit__layer=layer).exclude(word__contains="<").order_by("id")
    assert imported.count() == original.count() == 3
    for new, old in zip(imported, original):
        assert (new.word, new.category, new.description, new.confidence) == (old.word, old.category, old.description,
                                                                             old.confidence)
        assert new.assignment.status == old.assignment.status
        assert new.assignment.worker.username == f"mturk-{old.assignment.worker.username}"
        assert sorted(e.rank for e in new.non_fitting.all()) == sorted(e.rank for e in old.non_fitting.all())


def test_our_own_export_read_back_into_its_layer_adds_nothing(labelled, tmp_path):
    job, layer, hits = labelled
    from units.crowd.models import Hit

    write_mturk(tmp_path / "m.csv", Hit.objects.filter(unit__layer=layer))
    before = Annotation.objects.count()
    assert mturk_import(path=tmp_path / "m.csv", layer=layer) == {
        "rows": 4, "created": 0, "skipped": 4, "invalid": 0, "invalid_lines": []}
    assert Annotation.objects.count() == before


def test_a_bad_mturk_csv_names_the_line_and_column_and_writes_nothing(labelled, tmp_path):
    job, layer, hits = labelled
    bad = tmp_path / "bad.csv"
    bad.write_text("WorkerId,AssignmentStatus,Input.unit,Answer.category\nW1,Submitted,0,object\nW2,Submitted,1,animal\n")
    before = Annotation.objects.count()
    with pytest.raises(ResultsError, match=r"bad.csv line 3: Answer.category 'animal'"):
        mturk_import(path=bad, layer=layer)
    assert Annotation.objects.count() == before
    (tmp_path / "nocol.csv").write_text("WorkerId,Answer.word\nW1,dog\n")
    with pytest.raises(ResultsError, match="missing column"):
        mturk_import(path=tmp_path / "nocol.csv", layer=layer)


def test_imported_broden_and_iclr_category_names_become_ours(labelled, tmp_path):
    """Labels collected elsewhere say "Material" or "surface"; both are our texture (Broden calls it material)."""
    job, layer, hits = labelled
    path = tmp_path / "elsewhere.csv"
    path.write_text("WorkerId,AssignmentStatus,Input.unit,Answer.word,Answer.category\n"
                    "W1,Approved,2,wood,Material\nW2,Submitted,2,bark, surface \n")
    assert mturk_import(path=path, layer=layer)["created"] == 2
    imported = Annotation.objects.filter(assignment__worker__username__in=["mturk-W1", "mturk-W2"])
    assert sorted(imported.values_list("category", flat=True)) == ["texture", "texture"]


def test_a_tally_csv_imports_as_a_layers_automatic_labels(labelled, tmp_path):
    job, layer, hits = labelled
    _write_original_tally(tmp_path / "tally.csv", layer)
    assert tally_import(path=tmp_path / "tally.csv", layer=layer) == 3
    unit = Unit.objects.get(layer=layer, index=1)
    assert (unit.iou_label, unit.iou_category, unit.iou_score) == ("wood", "material", 0.0612)
    assert [(s.concept.name,
             s.iou) for s in unit.concept_scores.order_by("rank")] == [("wood", 0.0612), ("sky-s", 0.01)]
    (tmp_path / "bad.csv").write_text("unit,label\n1,dog\n")
    with pytest.raises(ResultsError, match="bad.csv: cannot read it as a NetDissect tally.csv"):
        tally_import(path=tmp_path / "bad.csv", layer=layer)


def test_milan_archive_holds_annotations_images_and_masks(labelled, tmp_path, media_root):
    job, layer, hits = labelled
    ex = hits[0].unit.exemplars.get(rank=0)
    plain = np.full((8, 8, 3), 200, np.uint8)
    Image.fromarray(plain).save(media_root / ex.plain)
    pic = plain.copy()
    pic[:, :4] = 40  # left half dimmed to 20%: outside the mask
    ex.picture = ex.plain.replace(".png", "_hl.png")
    ex.save(update_fields=["picture"])
    Image.fromarray(pic).save(media_root / ex.picture)
    write_milan(tmp_path / "m.zip", Unit.objects.filter(layer=layer))
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        names = set(zf.namelist())
        rows = list(csv.DictReader(io.StringIO(zf.read("annotations.csv").decode())))
        listing = list(csv.DictReader(io.StringIO(zf.read("conv3/exemplars.csv").decode())))
        mask = np.asarray(Image.open(io.BytesIO(zf.read("conv3/masks/unit0000_00.png"))))
    assert list(rows[0]) == ["layer", "unit", "summary"]
    assert [(r["layer"], r["unit"], r["summary"]) for r in rows] == [
        ("conv3", "0", "dogs, mostly faces"), ("conv3", "0", "dog"), ("conv3", "1", "<script>alert(1)</script>")]
    assert len(listing) == 12 and "conv3/images/unit0000_00.png" in names
    assert (mask[:, :4] == 0).all() and (mask[:, 4:] == 255).all()


def test_milan_images_keep_their_own_format_and_masks_are_png(labelled, tmp_path, media_root):
    """The engine writes JPEG exemplars; packing JPEG bytes under a .png name misleads readers."""
    job, layer, hits = labelled
    ex = hits[0].unit.exemplars.get(rank=0)
    plain = np.full((8, 8, 3), 200, np.uint8)
    ex.plain = ex.plain.rsplit(".", 1)[0] + ".jpg"
    ex.picture = ex.plain.replace(".jpg", "_hl.jpg")
    ex.save(update_fields=["plain", "picture"])
    Image.fromarray(plain).save(media_root / ex.plain, format="JPEG")
    Image.fromarray(plain).save(media_root / ex.picture, format="JPEG")
    write_milan(tmp_path / "m.zip", Unit.objects.filter(layer=layer))
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        listing = list(csv.DictReader(io.StringIO(zf.read("conv3/exemplars.csv").decode())))
        row = next(r for r in listing if (r["unit"], r["rank"]) == ("0", "0"))
        assert (row["image"], row["mask"]) == ("conv3/images/unit0000_00.jpg", "conv3/masks/unit0000_00.png")
        assert zf.read(row["image"])[:3] == b"\xff\xd8\xff"  # JPEG magic
        assert zf.read(row["mask"])[:8] == b"\x89PNG\r\n\x1a\n"
        for r in listing:  # every listed file is in the archive, with the extension its bytes have
            if r["image"]:
                magic = zf.read(r["image"])[:3]
                assert r["image"].endswith(".jpg") == (magic == b"\xff\xd8\xff"), r["image"]


def test_exemplar_mask_inverts_the_netdissect_overlay(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.integers(20, 255, size=(6, 6, 3)).astype(np.float32)
    truth = rng.random((6, 6)) > 0.5
    overlay = (image * (0.2 + 0.8 * truth)[..., None]).astype(np.uint8)
    Image.fromarray(image.astype(np.uint8)).save(tmp_path / "plain.png")
    Image.fromarray(overlay).save(tmp_path / "pic.png")
    assert (np.asarray(exemplar_mask(tmp_path / "pic.png", tmp_path / "plain.png")) > 0).tolist() == truth.tolist()


def test_an_export_job_writes_a_dated_file_in_the_background(labelled, media_root, django_capture_on_commit_callbacks):
    job, layer, hits = labelled
    with django_capture_on_commit_callbacks(execute=True):
        export = export_create(kind="units_csv", layer=layer)
    export.refresh_from_db()
    assert export.status == ExportJob.Status.SUCCEEDED and export.progress == 1.0
    assert export.file.startswith("exports/units_csv_") and export.file.endswith(".csv")
    assert (media_root / export.file).is_file()
    with pytest.raises(ResultsError, match="per layer"):
        export_create(kind="tally", job=job)
