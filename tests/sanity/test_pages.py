"""The sanity pages: requester-only, the report's tables and plots, files, publishing as HITs."""
import pytest
from django.urls import reverse

from tests.factories import PASSWORD
from units.crowd.models import Hit
from units.dissection.models import DissectionJob, Unit
from units.sanity.models import SanityReport


def _login(client, user):
    assert client.login(username=user.username, password=PASSWORD)
    return client


def test_annotators_are_refused_and_visitors_must_sign_in(client, annotator, finished_report):
    for url in (reverse("sanity:list"), reverse("sanity:detail", args=[finished_report.pk]),
                reverse("sanity:file", args=[finished_report.pk, "report.md"])):
        assert client.get(url).status_code == 302
    _login(client, annotator)
    assert client.get(reverse("sanity:detail", args=[finished_report.pk])).status_code == 403
    assert client.post(reverse("sanity:publish", args=[finished_report.pk]),
                       {"runs": ["baseline_s0"]}).status_code == 403
    assert not Hit.objects.exists()


def test_the_report_page_shows_the_tables_and_plots(client, requester, finished_report):
    page = _login(client, requester).get(reverse("sanity:detail", args=[finished_report.pk])).content.decode()
    assert "Best unit per digit" in page and "seed paper: conv3" in page
    assert "conv3 x3 wider" in page and "The seed&#x27;s claims, one by one" in page
    plot = reverse("sanity:file", args=[finished_report.pk, "plots/variants_accuracy.png"])
    assert plot in page
    response = client.get(plot)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"


def test_only_files_the_report_wrote_are_served(client, requester, finished_report):
    _login(client, requester)
    assert client.get(reverse("sanity:file", args=[finished_report.pk, "report.md"])).status_code == 200
    for bad in ("../../settings.py", "data/val/index.csv", "runs/baseline_s0/model.pt"):
        assert client.get(reverse("sanity:file", args=[finished_report.pk, bad])).status_code == 404


def test_publishing_a_run_registers_its_units_with_detectors_as_gold_and_creates_hits(
        client, requester, finished_report):
    _login(client, requester)
    response = client.post(reverse("sanity:publish", args=[finished_report.pk]),
                           {"runs": ["baseline_s0"], "layers": ["conv3"], "assignments_per_hit": 3}, follow=True)
    assert response.status_code == 200
    job = finished_report.jobs.get()
    assert job.status == DissectionJob.Status.SUCCEEDED
    units = {u.index: u for u in Unit.objects.filter(layer__job=job, layer__name="conv3")}
    assert len(units) == 10
    run = next(r for r in finished_report.json["runs"] if r["id"] == "baseline_s0")
    for u in run["layers"]["conv3"]["units"]:
        row = units[u["unit"]]
        assert row.is_gold == u["detector"]
        assert row.gold_word == (str(u["best_digit"]) if u["detector"] else "")
    assert units[0].is_gold and units[0].gold_word == "0" and units[0].gold_category == "object"
    assert not units[1].is_gold
    assert units[0].exemplars.count() == 3
    assert units[0].exemplars.first().picture.startswith(f"sanity/{finished_report.pk}/runs/baseline_s0/dissect/conv3/")
    hits = Hit.objects.filter(unit__layer__job=job)
    assert hits.count() == 10 and hits.filter(is_gold=True).count() == 9
    page = client.get(reverse("sanity:detail", args=[finished_report.pk])).content.decode()
    assert "Crowd labels against the true digits" in page
    assert "<td>9</td>" in page  # nine gold units in conv3 before any crowd label
    # Publishing again creates nothing new (one HIT per unit) and registers no second job.
    client.post(reverse("sanity:publish", args=[finished_report.pk]), {"runs": ["baseline_s0"], "layers": ["conv3"],
                                                                      "assignments_per_hit": 3})
    assert Hit.objects.count() == 10 and finished_report.jobs.count() == 1


def test_publishing_without_a_run_writes_nothing_and_says_why(client, requester, finished_report):
    _login(client, requester)
    response = client.post(reverse("sanity:publish", args=[finished_report.pk]), {"layers": ["conv3"]}, follow=True)
    assert "Choose at least one run" in response.content.decode()
    assert not DissectionJob.objects.exists() and not Hit.objects.exists()


def test_starting_a_report_queues_it_after_commit(client, requester, django_capture_on_commit_callbacks, monkeypatch):
    queued = []
    monkeypatch.setattr("tasks.sanity.run_sanity_report.delay", lambda pk: queued.append(pk))
    _login(client, requester)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("sanity:list"), {"source": "digits", "seeds": 2, "quick": "on"})
    report = SanityReport.objects.get()
    assert response.status_code == 302 and queued == [report.pk]
    assert report.params["seeds"] == 2 and report.params["quick"] and report.status == "pending"


def test_the_seeds_network_can_be_chosen_and_the_page_says_how_long_the_run_takes(
        client, requester, django_capture_on_commit_callbacks, monkeypatch):
    from tasks.engine.sanity import SanityConfig, estimate_minutes

    monkeypatch.setattr("tasks.sanity.run_sanity_report.delay", lambda pk: None)
    _login(client, requester)
    page = client.get(reverse("sanity:list")).content.decode()
    full = estimate_minutes(SanityConfig(seeds=3), workers=2)
    assert f"about {full:.0f} for the full run" in page
    # Both networks: the full run the command line makes of --network both (2 seeds), under 20 minutes.
    both = estimate_minutes(SanityConfig.full_config(network="both"), workers=2)
    assert both < 20 and f"takes about {both:.0f} minutes" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("sanity:list"), {"source": "digits", "seeds": 1, "quick": "on",
                                                        "network": "both"}, follow=True)
    report = SanityReport.objects.get()
    assert report.params["network"] == "both"
    expected = estimate_minutes(SanityConfig.quick_config(seeds=1, network="both"), workers=2)
    assert f"about {expected:.0f} minute(s)" in response.content.decode()


@pytest.mark.parametrize("source, message", [("mnist", "Unknown digit source"), ("idx:/no/such/dir", "does not exist")])
def test_a_bad_source_is_a_form_error_and_creates_nothing(client, requester, source, message):
    _login(client, requester)
    response = client.post(reverse("sanity:list"), {"source": source, "seeds": 1})
    assert response.status_code == 200 and message in response.content.decode()
    assert not SanityReport.objects.exists()


def test_the_admin_lists_reports_read_only(client, admin, finished_report):
    client.force_login(admin)
    listing = client.get(reverse("admin:sanity_sanityreport_changelist"))
    assert listing.status_code == 200 and f"/{finished_report.pk}/change/" in listing.content.decode()
    assert client.get(reverse("admin:sanity_sanityreport_add")).status_code == 403
