"""Words in any script survive normalisation, aggregation and every export format.

The expected values are written out by hand (NFC, case-folded), not computed with the code under test."""
import csv
import json
import unicodedata
import zipfile

import pytest

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.crowd.models import Annotation, Hit
from units.dissection.models import Unit
from units.results.exports import write_milan, write_mturk, write_tally, write_units_csv, write_units_json
from units.results.imports import mturk_import
from units.results.normalize import Vocabulary, normalize_word
from units.results.services import aggregation_run_layer

pytestmark = pytest.mark.filterwarnings("ignore:::crowdkit")

# (what annotators typed, the crowd word after normalising)
WORDS = [
    ("café & crème", "café & crème"),
    ("Crème Brûlée", "crème brûlée"),
    ("Cafe\u0301", "café"),                  # decomposed e + combining acute: NFC composes it
    ("STRASSE", "strasse"), ("Straße", "strasse"),  # case folding, not just lower()
    ("Ελληνικά", "ελληνικά"),
    ("ПОДСОЛНУХ", "подсолнух"),
    ("हिन्दी", "हिन्दी"),                     # Devanagari vowel signs are combining marks: kept
    ("猫", "猫"),
    ("ขนมปัง", "ขนมปัง"),                    # Thai, with its combining marks
    ("عربي", "عربي"),
    ("the Dogs", "dog"),                      # the English rules still apply
]


@pytest.mark.parametrize("typed, expected", WORDS)
def test_words_in_any_script_survive_normalisation(typed, expected):
    assert normalize_word(typed) == expected
    assert unicodedata.is_normalized("NFC", normalize_word(typed))


def test_composed_and_decomposed_spellings_and_cases_are_the_same_word():
    vocab = Vocabulary(["café", "straße"])
    assert vocab.match("CAFE\u0301") == "café"
    assert vocab.same("Café", "cafe\u0301")
    assert vocab.match("STRASSE") == "straße"


def test_punctuation_and_symbols_still_become_spaces():
    assert normalize_word("café!!") == "café"
    assert normalize_word("«crème»") == "crème"
    assert normalize_word("日本・猫") == "日本 猫"


UNIT_WORDS = ["café & crème", "Ελληνικά", "猫"]


@pytest.fixture
def unicode_layer(db, media_root):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4, write_pictures=True)
    hits = make_hits(job)
    ann1, ann2 = make_user("ann1"), make_user("ann2")
    for hit, word in zip(hits, UNIT_WORDS):
        answer(hit, ann1, word, "object", description=f"{word}, mostly", non_fitting=(0,))
        answer(hit, ann2, word.upper(), "object")
    layer = job.layer_set.get()
    aggregation_run_layer(layer=layer, adapt=False)
    return layer


EXPECTED = {1: "café & crème", 2: "ελληνικά", 3: "猫"}  # by unit number (from 1)


def test_the_crowd_word_keeps_accents_and_scripts(unicode_layer):
    got = {u.index + 1: u.aggregate.crowd_word for u in Unit.objects.filter(layer=unicode_layer)}
    assert got == EXPECTED


def test_the_labelled_units_csv_and_json_keep_every_script(unicode_layer, tmp_path):
    units = Unit.objects.filter(layer=unicode_layer)
    write_units_csv(tmp_path / "u.csv", units)
    write_units_json(tmp_path / "u.json", units)
    with open(tmp_path / "u.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {int(r["unit"]): r["crowd_word"] for r in csv.DictReader(fh)}
    assert rows == EXPECTED
    raw = (tmp_path / "u.json").read_text(encoding="utf-8")
    assert "café & crème" in raw and "\\u" not in raw  # readable, not escaped
    doc = json.loads(raw)
    assert {u["unit"]: u["crowd_word"] for u in doc["units"]} == EXPECTED
    assert doc["unit_numbering"].startswith("from 1")


def test_the_tally_crowd_word_column_keeps_every_script(unicode_layer, tmp_path):
    write_tally(tmp_path / "t.csv", unicode_layer)
    with open(tmp_path / "t.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {int(r["unit"]): r["crowd-word"] for r in csv.DictReader(fh)}
    assert rows == EXPECTED


def test_the_mturk_export_keeps_the_typed_words_and_imports_them_back(unicode_layer, tmp_path):
    write_mturk(tmp_path / "m.csv", Hit.objects.filter(unit__layer=unicode_layer))
    with open(tmp_path / "m.csv", newline="", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    typed = {(int(r["Input.unit_number"]), r["WorkerId"]): (r["Answer.word"], r["Answer.description"]) for r in rows}
    assert typed[(1, "ann1")] == ("café & crème", "café & crème, mostly")
    assert typed[(2, "ann2")] == ("ΕΛΛΗΝΙΚΆ", "")
    assert typed[(3, "ann1")][0] == "猫"
    assert {r["Answer.non_fitting_images"] for r in rows if r["WorkerId"] == "ann1"} == {"1"}

    other = make_job(layers={"conv3": 3}, exemplars_per_unit=4).layer_set.get()
    assert mturk_import(path=tmp_path / "m.csv", layer=other)["created"] == 6
    back = Annotation.objects.get(assignment__hit__unit__layer=other, assignment__hit__unit__index=0,
                                  assignment__worker__username="mturk-ann1")
    assert (back.word, back.description) == ("café & crème", "café & crème, mostly")
    assert list(back.non_fitting.values_list("rank", flat=True)) == [0]


def test_the_milan_archive_keeps_every_script(unicode_layer, tmp_path):
    write_milan(tmp_path / "m.zip", Unit.objects.filter(layer=unicode_layer))
    with zipfile.ZipFile(tmp_path / "m.zip") as zf:
        text = zf.read("annotations.csv").decode("utf-8")
        assert "0-based" in zf.read("README.txt").decode("utf-8")
    summaries = [r["summary"] for r in csv.DictReader(text.splitlines())]
    assert "café & crème, mostly" in summaries and "ελληνικά" in summaries and "猫, mostly" in summaries


def test_an_old_mturk_file_counting_from_0_lands_on_the_same_unit_as_a_new_one(unicode_layer, tmp_path):
    old, new = tmp_path / "old.csv", tmp_path / "new.csv"
    old.write_text("WorkerId,AssignmentStatus,Input.unit,Answer.word,Answer.category,Answer.non_fitting\n"
                   "W1,Submitted,2,crème,object,0|1\n", encoding="utf-8")
    new.write_text("WorkerId,AssignmentStatus,Input.unit_number,Answer.word,Answer.category,Answer.non_fitting_images\n"
                   "W2,Submitted,3,crème,object,1|2\n", encoding="utf-8")
    mturk_import(path=old, layer=unicode_layer)
    mturk_import(path=new, layer=unicode_layer)
    a1 = Annotation.objects.get(assignment__worker__username="mturk-W1")
    a2 = Annotation.objects.get(assignment__worker__username="mturk-W2")
    assert a1.assignment.hit.unit_id == a2.assignment.hit.unit_id
    assert a1.assignment.hit.unit.index == 2
    ranks = [sorted(a.non_fitting.values_list("rank", flat=True)) for a in (a1, a2)]
    assert ranks[0] == ranks[1] == [0, 1]
