"""API permission matrix for the results endpoints, filtering, on-demand aggregation, exports, schema."""
import pytest
from django.core.management import call_command
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import make_hits, make_job
from tests.results.helpers import answer
from units.results.models import ExportJob, SynonymEntry, UnitAggregate
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]

REQUESTER_ONLY = [
    "/api/hit-batches/", "/api/hits/", "/api/labels/", "/api/aggregation-runs/",
    "/api/comparisons/", "/api/exports/", "/api/synonyms/", "/api/verifications/",
]


@pytest.fixture
def world(annotator, other_annotator):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4)
    hits = make_hits(job)
    mine = answer(hits[0], annotator, "dog", "object")
    theirs = answer(hits[0], other_annotator, "cat", "object")
    layer = job.layer_set.get()
    aggregation_run_layer(layer=layer, adapt=False)
    return {"job": job, "layer": layer, "hits": hits, "mine": mine, "theirs": theirs}


def client_for(user=None, token=False):
    client = APIClient()
    if user is not None and token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    elif user is not None:
        client.force_login(user)
    return client


OWN_WORK = ["/api/annotations/", "/api/assignments/"]


@pytest.mark.parametrize("url", REQUESTER_ONLY + OWN_WORK)
def test_anonymous_callers_are_refused_everywhere(world, url):
    assert client_for().get(url).status_code in (401, 403)


@pytest.mark.parametrize("url", REQUESTER_ONLY)
def test_annotators_cannot_reach_requester_endpoints(world, annotator, url):
    assert client_for(annotator, token=True).get(url).status_code == 403


@pytest.mark.parametrize("url", REQUESTER_ONLY + OWN_WORK)
@pytest.mark.parametrize("who", ["requester", "admin"])
def test_requesters_and_admins_reach_every_results_endpoint(world, request, who, url):
    assert client_for(request.getfixturevalue(who)).get(url).status_code == 200


def test_an_annotator_sees_only_their_own_annotations(world, annotator):
    client = client_for(annotator, token=True)
    body = client.get("/api/annotations/").json()
    assert [a["id"] for a in body["results"]] == [world["mine"].pk]
    assert client.get(f"/api/annotations/{world['theirs'].pk}/").status_code == 404
    assert client.get(f"/api/annotations/{world['mine'].pk}/").json()["word"] == "dog"


def test_an_annotator_sees_only_their_own_assignments(world, annotator, requester):
    client = client_for(annotator, token=True)
    body = client.get("/api/assignments/").json()
    assert [a["id"] for a in body["results"]] == [world["mine"].assignment_id]
    assert body["results"][0]["worker"] == annotator.username
    assert client.get(f"/api/assignments/{world['theirs'].assignment_id}/").status_code == 404
    assert client.get("/api/assignments/?worker=otto").json()["count"] == 0  # a filter cannot widen the view
    assert client_for(requester).get("/api/assignments/").json()["count"] == 2


def test_requesters_see_every_annotation_and_can_filter(world, requester):
    client = client_for(requester, token=True)
    assert client.get("/api/annotations/").json()["count"] == 2
    assert [a["word"] for a in client.get("/api/annotations/?worker=otto").json()["results"]] == ["cat"]


def test_labels_filter_by_layer_interpretable_and_category(world, requester):
    client = client_for(requester)
    UnitAggregate.objects.filter(unit=world["hits"][0].unit).update(interpretable=True)
    body = client.get(f"/api/labels/?layer={world['layer'].pk}&interpretable=true&category=object").json()
    assert body["count"] == 1 and body["results"][0]["unit_index"] == 0
    assert client.get("/api/labels/?category=scene").json()["count"] == 0


def test_labels_carry_the_published_label_and_filter_by_its_probability(world, requester):
    client = client_for(requester)
    agg = UnitAggregate.objects.get(unit=world["hits"][0].unit)
    row = client.get(f"/api/labels/?layer={world['layer'].pk}").json()["results"][0]
    assert (row["category"], row["category_probability"], row["word_probability"], row["method"]) == (
        agg.category, agg.category_probability, agg.word_probability, agg.method)
    assert row["n_annotations"] == agg.n_annotations
    just_below, just_above = agg.category_probability - 0.01, agg.category_probability + 0.01
    assert client.get(f"/api/labels/?min_probability={just_below}").json()["count"] == 1
    assert client.get(f"/api/labels/?min_probability={just_above}").json()["count"] == 0
    assert client.get("/api/labels/?min_probability=lots").status_code == 400


def test_true_false_filters_refuse_other_values_instead_of_returning_everything(world, requester):
    client = client_for(requester)
    UnitAggregate.objects.filter(unit=world["hits"][0].unit).update(interpretable=True)
    assert client.get("/api/labels/?interpretable=false").json()["count"] == 0
    assert client.get("/api/labels/?interpretable=1").json()["count"] == 1
    refused = client.get("/api/labels/?interpretable=maybe")
    assert refused.status_code == 400 and "interpretable" in refused.json()
    assert client.get("/api/hits/?is_gold=yes-please").status_code == 400
    assert client.get("/api/hits/?is_gold=false").json()["count"] == len(world["hits"])


def test_comparisons_report_each_layer(world, requester):
    body = client_for(requester).get(f"/api/comparisons/{world['layer'].pk}/").json()
    assert body["units"] == 3 and body["both"] + body["human_only"] + body["iou_only"] + body["neither"] == 3
    assert body["detectors"]["n_units"] == 3


def test_aggregation_on_demand_is_queued_and_validated(world, requester):
    client = client_for(requester)
    assert client.post("/api/aggregation-runs/", {"layer": world["layer"].pk}).status_code == 202
    assert client.post("/api/aggregation-runs/", {}).status_code == 400


def test_an_export_is_created_polled_and_downloaded(world, requester, media_root, django_capture_on_commit_callbacks):
    client = client_for(requester)
    with django_capture_on_commit_callbacks(execute=True):
        created = client.post("/api/exports/", {"kind": "units_csv", "layer": world["layer"].pk})
    assert created.status_code == 202
    export = client.get(f"/api/exports/{created.json()['id']}/").json()
    assert export["status"] == "succeeded"
    assert export["download_url"].endswith(f"/api/v1/exports/{export['id']}/download/")
    download = client.get(f"/api/exports/{export['id']}/download/")
    assert download.status_code == 200
    assert export["filename"] in download["Content-Disposition"]
    assert b"".join(download.streaming_content).startswith(b"\xef\xbb\xbflayer,unit,crowd_word")  # BOM: for Excel


def test_an_unfinished_export_cannot_be_downloaded_and_bad_requests_say_why(world, requester):
    client = client_for(requester)
    pending = ExportJob.objects.create(project_id=world["layer"].job.project_id, kind="units_csv", layer=world["layer"])
    assert client.get(f"/api/exports/{pending.pk}/download/").status_code == 409
    refused = client.post("/api/exports/", {"kind": "tally", "job": world["job"].pk})
    assert refused.status_code == 400 and "per layer" in refused.json()["detail"]


def test_synonyms_are_created_through_the_service(world, requester):
    client = client_for(requester)
    made = client.post("/api/synonyms/", {"dataset": world["job"].dataset.pk, "word": "Puppies", "target": "dog"})
    assert made.status_code == 201 and made.json()["word"] == "puppy"
    assert SynonymEntry.objects.filter(word="puppy").exists()


def test_publishing_through_the_api_calls_the_publishing_service(requester):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=4)
    client = client_for(requester)
    layer = job.layer_set.get()
    first = client.post("/api/hit-batches/", {"layers": [layer.pk], "assignments_per_hit": 2}, format="json")
    assert first.status_code == 201 and first.json()["hits"] == 2
    again = client.post("/api/hit-batches/", {"layers": [layer.pk]}, format="json")
    assert again.status_code == 200
    assert client.post("/api/hit-batches/", {"layers": [layer.pk], "assignments_per_hit": 0},
                       format="json").status_code == 400


def test_the_whole_projects_openapi_schema_generates_without_warnings(tmp_path):
    # In-process equivalent of `python manage.py spectacular --fail-on-warn` (a warning raises).
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    assert "/api/v1/labels/" in schema and "/api/v1/exports/{id}/download/" in schema
