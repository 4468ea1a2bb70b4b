"""Results pages: who may see them, what they show, user text escaped, forms that change data."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from tests.factories import make_hits, make_job, make_user
from tests.results.helpers import answer
from units.dissection.models import Unit
from units.results.models import ExportJob, SynonymEntry, UnitAggregate
from units.results.services import aggregation_run_layer

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore:::crowdkit")]


@pytest.fixture
def world(annotator, other_annotator):
    job = make_job(layers={"conv3": 3}, exemplars_per_unit=4)
    hits = make_hits(job)
    answer(hits[0], annotator, "<img src=x onerror=alert(1)>", "object", description="<script>alert('x')</script>")
    answer(hits[0], other_annotator, "dog", "object", non_fitting=(2,))
    layer = job.layer_set.get()
    aggregation_run_layer(layer=layer, adapt=False)
    return {"job": job, "layer": layer, "hits": hits}


def pages(world):
    return [
        "/results/", f"/results/layers/{world['layer'].pk}/", "/results/annotators/",
        f"/results/units/{world['hits'][0].unit_id}/", f"/results/datasets/{world['job'].dataset_id}/synonyms/",
        "/results/exports/", "/results/imports/",
    ]


def login(user):
    client = Client()
    client.force_login(user)
    return client


def test_anonymous_visitors_are_sent_to_sign_in(world):
    for url in pages(world):
        response = Client().get(url)
        assert response.status_code == 302 and "/accounts/login" in response["Location"], url


def test_annotators_get_403_on_results_pages(world, annotator):
    client = login(annotator)
    for url in pages(world):
        assert client.get(url).status_code == 403, url


def test_requesters_and_admins_see_every_page(world, requester, admin):
    for user in (requester, admin):
        client = login(user)
        for url in pages(world):
            assert client.get(url).status_code == 200, url


def test_the_layer_page_shows_the_summary_lines_and_charts(world, requester):
    html = login(requester).get(f"/results/layers/{world['layer'].pk}/").content.decode()
    assert "1/3 units covering 1 concepts with IoU &gt;= 0.04" in html  # IoU scores 0.02, 0.04, 0.06
    assert "1/3 units covering 1 concepts</p>" in html  # the crowd named "dog" for unit 0 at precision 0.875
    assert "<svg" in html


def test_layer_and_unit_pages_show_the_published_label_its_probability_and_answer_count(world, requester):
    agg = UnitAggregate.objects.get(unit_id=world["hits"][0].unit_id)
    word_p, category_p = f"{agg.word_probability:.2f}", f"{agg.category_probability:.2f}"
    layer_html = login(requester).get(f"/results/layers/{world['layer'].pk}/").content.decode()
    assert f"({word_p})" in layer_html and f"{agg.category} <span class=\"muted\">({category_p})</span>" in layer_html
    assert "MV / DS" not in layer_html  # no overfitting alternative beside the label (verify HITs keep theirs)
    unit_html = login(requester).get(f"/results/units/{world['hits'][0].unit_id}/").content.decode()
    assert f"(probability {word_p})" in unit_html and f"(probability {category_p})" in unit_html
    assert "2 answers" in unit_html and "Dawid-Skene" not in unit_html


def test_user_text_is_escaped_on_the_unit_page(world, requester):
    html = login(requester).get(f"/results/units/{world['hits'][0].unit_id}/").content.decode()
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "otto" in html and "dog" in html


def test_the_annotators_table_counts_work(world, requester):
    html = login(requester).get("/results/annotators/").content.decode()
    assert "annie" in html and "60 s" in html


def test_synonym_form_adds_and_removes_entries(world, requester):
    client = login(requester)
    url = f"/results/datasets/{world['job'].dataset_id}/synonyms/"
    assert client.post(url, {"word": "Puppies", "target": "dog"}).status_code == 302
    entry = SynonymEntry.objects.get()
    assert entry.word == "puppy"
    refused = client.post(url, {"word": "dog", "target": "dogs"})
    assert refused.status_code == 200 and "no synonym is needed" in refused.content.decode()
    assert client.post(f"/results/synonyms/{entry.pk}/delete/").status_code == 302
    assert not SynonymEntry.objects.exists()


def test_an_export_started_from_the_page_is_downloadable(world, requester, media_root,
                                                         django_capture_on_commit_callbacks):
    client = login(requester)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/results/exports/", {"kind": "mturk", "layer": world["layer"].pk}).status_code == 302
    export = ExportJob.objects.get()
    assert client.get(f"/results/exports/{export.pk}/status/").json()["status"] == "succeeded"
    response = client.get(f"/results/exports/{export.pk}/download/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\xef\xbb\xbfHITId,HITTypeId,Title")
    assert "mturk_" in response["Content-Disposition"]


def test_an_export_form_error_is_shown_once(world, requester):
    response = login(requester).post("/results/exports/", {"kind": "tally", "job": world["job"].pk})
    html = response.content.decode()
    assert response.status_code == 200 and html.count("A tally.csv export is per layer") == 1
    assert not ExportJob.objects.exists()


def test_a_bad_import_file_gives_a_form_error_not_a_traceback(world, requester):
    client = login(requester)
    upload = SimpleUploadedFile("results.csv", b"WorkerId,Answer.word\nW1,dog\n", content_type="text/csv")
    response = client.post("/results/imports/", {"kind": "mturk", "layer": world["layer"].pk, "file": upload})
    assert response.status_code == 200 and "missing column" in response.content.decode()


def test_posting_aggregate_requeues_the_layer(world, requester):
    response = login(requester).post(f"/results/layers/{world['layer'].pk}/aggregate/")
    assert response.status_code == 302


def test_the_overview_polls_the_platforms_job_status_json(world, requester):
    html = login(requester).get("/results/").content.decode()
    assert f'data-status-url="/jobs/{world["job"].pk}/status.json"' in html
    assert "0 / 3" in html  # HITs done of total


def test_the_layer_page_offers_every_export(world, requester):
    html = login(requester).get(f"/results/layers/{world['layer'].pk}/").content.decode()
    for kind in ("units_csv", "units_json", "tally", "mturk", "milan"):
        assert f'name="kind" value="{kind}"' in html


def test_the_annotators_table_rows_hold_counts_and_median_time(requester):
    from units.crowd.models import Assignment
    from units.results.selectors import annotator_rows

    job = make_job(layers={"conv3": 3}, exemplars_per_unit=2)
    hits = make_hits(job)
    worker = make_user("tabby")
    answer(hits[0], worker, "a", "object", seconds=10)
    answer(hits[1], worker, "b", "object", seconds=30, status=Assignment.Status.APPROVED)
    answer(hits[2], worker, "c", "object", seconds=80, status=Assignment.Status.REJECTED)
    row = next(r for r in annotator_rows() if r["worker"] == worker)
    assert (row["submitted"], row["approved"], row["rejected"], row["median_seconds"]) == (3, 1, 1, 30)



def test_crowd_accuracy_says_no_answer_yet_before_the_crowd_answered_a_gold_unit(requester, db):
    job = make_job(layers={"conv3": 2}, exemplars_per_unit=2)
    make_hits(job)
    layer = job.layer_set.get()
    Unit.objects.filter(layer=layer, index=0).update(is_gold=True, gold_word="0", gold_category="object")
    aggregation_run_layer(layer=layer, adapt=False)
    html = login(requester).get(f"/results/layers/{layer.pk}/").content.decode()
    assert '<span id="crowd-accuracy">no answer yet</span>' in html


def test_a_bad_tally_upload_names_the_file_not_a_server_path(world, requester):
    upload = SimpleUploadedFile("my tally.csv", b"unit,category\nx,y\n", content_type="text/csv")
    response = login(requester).post("/results/imports/", {"kind": "tally", "layer": world["layer"].pk, "file": upload})
    html = response.content.decode()
    assert response.status_code == 200 and "my tally.csv" in html
    assert "/tmp" not in html and "tmp" not in html.split("my tally.csv")[1].split("</ul>")[0]


def test_the_hour_chart_labels_every_third_hour_so_they_do_not_overlap(world, requester):
    import re

    html = login(requester).get("/results/").content.decode()
    labels = re.findall(r'font-size="10">(\d\d):00</text>', html)
    assert len(labels) == 8  # of 24 bars, 90 px apart on the 720 px chart
    hours = [int(h) for h in labels]
    assert all((b - a) % 24 == 3 for a, b in zip(hours, hours[1:]))
    assert html.count("<rect") >= 24  # every hour still has its bar (and its title)
