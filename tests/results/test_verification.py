"""Verify HITs' results: yes/no aggregation against hand-worked examples, and the per-layer human-judged
precision table against hand-counted units, on the layer page, in the API and in the exports."""
import csv
import json

import pytest
from django.db.models import F
from rest_framework.test import APIClient

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer, verify_answer
from units.crowd.models import Assignment
from units.crowd.verify import hit_publish_verify
from units.dissection.models import Unit
from units.results.exports import write_tally, write_units_csv, write_units_json
from units.results.models import UnitAggregate, UnitVerification
from units.results.services import aggregation_run_layer
from units.results.verdicts import Verdict, aggregate_verdicts, precision_table

pytestmark = pytest.mark.filterwarnings("ignore:::crowdkit")


def v(task, worker, verdict):
    return Verdict(task=task, worker=worker, verdict=verdict)


def test_majority_vote_counts_yes_over_no_ties_do_not_accept_and_unsure_casts_no_vote():
    answers = [v("A", 1, "yes"), v("A", 2, "yes"), v("A", 3, "no"),
               v("B", 1, "no"), v("B", 2, "unsure"),
               v("C", 1, "yes"), v("C", 2, "no"), v("C", 3, "unsure"),
               v("D", 1, "unsure"), v("D", 2, "unsure")]
    tasks = aggregate_verdicts(answers).tasks
    got = {t: (r.n_yes, r.n_no, r.n_unsure, r.accepted_mv, r.agreement) for t, r in tasks.items()}
    assert got == {"A": (2, 1, 0, True, pytest.approx(2 / 3)), "B": (0, 1, 1, False, 1.0),
                   "C": (1, 1, 1, False, 0.5), "D": (0, 0, 2, None, None)}
    assert tasks["D"].accepted_ds is None  # nothing to judge


def test_dawid_skene_learns_that_a_contrarian_is_wrong_and_breaks_the_tie_the_vote_cannot():
    # Six tasks whose truth three careful workers agree on; worker "x" always answers the opposite.
    answers = []
    for i in range(6):
        truth = "yes" if i % 2 == 0 else "no"
        answers += [v(i, w, truth) for w in ("w1", "w2", "w3")]
        answers.append(v(i, "x", "no" if truth == "yes" else "yes"))
    # Task 6: w1 says yes, x says no. One vote each: the majority cannot accept it; knowing x is always
    # wrong, x's "no" is evidence for "yes", so Dawid-Skene accepts it.
    answers += [v(6, "w1", "yes"), v(6, "x", "no")]
    result = aggregate_verdicts(answers)
    assert result.tasks[6].accepted_mv is False and result.tasks[6].agreement == 0.5
    assert result.tasks[6].accepted_ds is True and result.tasks[6].ds_probability > 0.9
    for i in range(6):
        assert result.tasks[i].accepted_mv == result.tasks[i].accepted_ds == (i % 2 == 0)
    assert result.ds_skills["x"] < 0.1 < 0.9 < min(result.ds_skills[w] for w in ("w1", "w2", "w3"))


def test_one_answer_everywhere_leaves_dawid_skene_equal_to_the_vote():
    result = aggregate_verdicts([v("A", 1, "yes"), v("B", 2, "yes"), v("B", 3, "unsure")])
    assert [(r.accepted_mv, r.accepted_ds, r.ds_probability) for r in result.tasks.values()] == [(True, True, 1.0)] * 2


def test_an_unknown_verdict_is_an_error_not_a_silent_no():
    with pytest.raises(ValueError, match="maybe"):
        aggregate_verdicts([v("A", 1, "maybe")])


# --- the layer's table, hand-counted ------------------------------------------------------------

# Verdicts of workers w1, w2, w3 per (source, unit index); "-" = no answer. IoU labels are "0".."4";
# the crowd named units 0, 1, 2 "zero", "seven", "two" (the vocabulary stores them as "0", "7", "2").
VERDICTS = {
    ("iou", 0): ("yes", "no", "yes"),       # accepted (2 yes / 1 no)
    ("iou", 1): ("no", "yes", "no"),        # rejected
    # A tie: the vote does not accept. Dawid-Skene does: w1 agrees with every majority, and w2 never
    # answered "no" to a rejected label (w2's "no" came only where the label was accepted), so it says yes.
    ("iou", 2): ("yes", "no", "unsure"),
    ("iou", 3): ("unsure", "unsure", "-"),  # not judged
    ("iou", 4): ("yes", "yes", "yes"),      # accepted
    ("crowd", 0): ("yes", "yes", "yes"),    # accepted
    ("crowd", 1): ("no", "yes", "no"),      # rejected ("7" on the digit-1 unit)
    ("crowd", 2): ("yes", "yes", "yes"),    # accepted
}


@pytest.fixture
def judged(db, media_root):
    job = make_job(layers={"conv3": 5}, exemplars_per_unit=4)
    Unit.objects.filter(layer__job=job).update(iou_score=F("iou_score") + 0.05)  # every IoU label above 0.04
    layer = job.layer_set.get()
    label_hits = make_hits(job, assignments=2)
    a, b = make_user("lab1"), make_user("lab2")
    for hit, word in zip(label_hits, ["zero", "seven", "two"]):
        answer(hit, a, word, "object")
        answer(hit, b, word, "object")
    aggregation_run_layer(layer=layer, adapt=False)
    batch = hit_publish_verify(layers=[layer], sources=["iou", "crowd"])
    hits = {(h.label_source, h.unit.index): h for h in batch.hits.select_related("unit")}
    assert len(hits) == 8
    workers = [make_user("w1"), make_user("w2"), make_user("w3")]
    for key, verdicts in VERDICTS.items():
        for worker, verdict in zip(workers, verdicts):
            if verdict != "-":
                verify_answer(hits[key], worker, verdict)
    # A rejected answer does not count.
    verify_answer(hits[("crowd", 1)], make_user("w4"), "yes", status=Assignment.Status.REJECTED)
    aggregation_run_layer(layer=layer, adapt=False)
    return job, layer


EXPECTED_TABLE = [
    {"source": "iou", "judged": 4, "accepted_mv": 2, "precision_mv": 0.5, "accepted_ds": 3, "precision_ds": 0.75,
     "unsure_answers": 3, "agreement": pytest.approx((2 / 3 + 2 / 3 + 1 / 2 + 1) / 4)},
    {"source": "crowd", "judged": 3, "accepted_mv": 2, "precision_mv": pytest.approx(2 / 3), "accepted_ds": 2,
     "precision_ds": pytest.approx(2 / 3), "unsure_answers": 0, "agreement": pytest.approx((1 + 2 / 3 + 1) / 3)},
]


def test_the_precision_table_matches_the_hand_count(judged):
    job, layer = judged
    assert layer.aggregation_runs.first().summary["verification"] == EXPECTED_TABLE
    rows = {(r.source, r.unit.index): (r.label, r.n_yes, r.n_no, r.n_unsure, r.accepted_mv)
            for r in UnitVerification.objects.select_related("unit")}
    assert rows[("crowd", 1)] == ("7", 1, 2, 0, False)  # w4's rejected "yes" left out
    assert rows[("iou", 3)] == ("3", 0, 0, 2, None)


def test_verify_answers_stay_out_of_the_label_aggregation(judged):
    job, layer = judged
    assert list(UnitAggregate.objects.order_by("unit__index").values_list("unit__index", "crowd_word",
                                                                           "n_annotations")) == [
        (0, "0", 2), (1, "7", 2), (2, "2", 2)]


def test_the_layer_page_shows_the_table(judged, client, requester):
    job, layer = judged
    client.force_login(requester)
    html = client.get(f"/results/layers/{layer.pk}/").content.decode()
    assert 'id="verification-table"' in html
    iou = html.split('data-source="iou"')[1].split("</tr>")[0]
    assert '<td class="judged">4</td><td class="accepted-mv">2</td>' in iou
    assert '<td class="precision-mv">0.50</td>' in iou and '<td class="precision-ds">0.75</td>' in iou
    crowd = html.split('data-source="crowd"')[1].split("</tr>")[0]
    assert '<td class="judged">3</td>' in crowd and '<td class="precision-mv">0.67</td>' in crowd


def test_the_api_gives_the_table_and_the_verdicts_to_requesters_only(judged, requester, annotator):
    job, layer = judged
    api = APIClient()
    api.force_authenticate(requester)
    table = api.get(f"/api/verifications/precision/?layer={layer.pk}")
    assert table.status_code == 200 and table.json()["sources"] == EXPECTED_TABLE
    assert api.get(f"/api/comparisons/{layer.pk}/").json()["verification"] == EXPECTED_TABLE
    listed = api.get(f"/api/verifications/?layer={layer.pk}&source=iou&accepted_mv=true").json()["results"]
    assert sorted(r["unit_index"] for r in listed) == [0, 4]
    for bad in ("", "?layer=abc", "?layer=99999999999999999999"):
        assert api.get(f"/api/verifications/precision/{bad}").status_code == 400
    assert api.get("/api/verifications/precision/?layer=987654").status_code == 404
    api.force_authenticate(annotator)
    assert api.get(f"/api/verifications/precision/?layer={layer.pk}").status_code == 403
    assert api.get("/api/verifications/").status_code == 403
    assert APIClient().get("/api/verifications/").status_code in (401, 403)


def test_the_exports_carry_the_verdicts(judged, tmp_path):
    job, layer = judged
    write_tally(tmp_path / "tally.csv", layer)
    with open(tmp_path / "tally.csv", newline="", encoding="utf-8-sig") as fh:
        tally = {int(r["unit"]) - 1: r["verified"] for r in csv.DictReader(fh)}
    assert tally == {0: "1", 1: "0", 2: "0", 3: "", 4: "1"}
    units = layer.units.all()
    write_units_csv(tmp_path / "units.csv", units)
    with open(tmp_path / "units.csv", newline="", encoding="utf-8-sig") as fh:
        rows = {int(r["unit"]) - 1: r for r in csv.DictReader(fh)}  # the file counts units from 1
    assert [(rows[i]["iou_verified"], rows[i]["crowd_verified"]) for i in range(5)] == [
        ("1", "1"), ("0", "0"), ("0", "1"), ("", ""), ("1", "")]
    assert (rows[2]["iou_verify_yes"], rows[2]["iou_verify_no"]) == ("1", "1")
    write_units_json(tmp_path / "units.json", units)
    doc = json.loads((tmp_path / "units.json").read_text())
    assert [u["iou_verified"] for u in doc["units"]] == [True, False, False, None, True]


def test_the_precision_table_of_a_layer_without_verify_hits_says_nothing_was_judged():
    rows = precision_table([], ["iou", "crowd"])
    assert [(r.source, r.judged, r.precision_mv, r.precision_ds) for r in rows] == [
        ("iou", 0, None, None), ("crowd", 0, None, None)]
