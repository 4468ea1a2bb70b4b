"""A dissection job runs end to end in-process and stores exactly what the engine found."""
import csv

import pytest
from django.urls import reverse

from tests.factories import PASSWORD, lab_project, make_registered_pipeline
from units.dissection.models import DissectionJob, Exemplar, Layer, Network, ProbeDataset, Unit, UnitConceptScore
from units.dissection.services import job_start

pytestmark = pytest.mark.django_db


@pytest.fixture
def finished_job(tiny_mixture_dir, media_root, django_capture_on_commit_callbacks):
    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv1", "conv3"], top_k=3)
    with django_capture_on_commit_callbacks(execute=True):
        job_start(job=job)
    job.refresh_from_db()
    return job


def test_a_job_runs_to_success_and_stores_every_unit_with_its_exemplars(finished_job, media_root):
    job = finished_job
    assert job.status == DissectionJob.Status.SUCCEEDED, job.error_message
    assert job.progress == 1.0 and job.stage == "done"
    assert sorted(Layer.objects.filter(job=job).values_list("name", "num_units")) == [("conv1", 10), ("conv3", 10)]
    assert Unit.objects.filter(layer__job=job).count() == 20
    assert Exemplar.objects.filter(unit__layer__job=job, kind="top").count() == 20 * 3
    for ex in Exemplar.objects.filter(unit__layer__job=job):
        assert not ex.picture.startswith("/")  # relative to MEDIA_ROOT
        assert (media_root / ex.picture).is_file()
        assert (media_root / ex.plain).is_file()
    for unit in Unit.objects.filter(layer__job=job):
        assert (media_root / unit.strip).is_file()


def test_the_stored_labels_match_the_engines_tally_csv(finished_job, media_root):
    job = finished_job
    for layer in job.layer_set.all():
        with (media_root / job.output_dir / layer.name / "tally.csv").open() as f:
            tally = {int(r["unit"]) - 1: r for r in csv.DictReader(f)}  # tally.csv numbers units from 1
        for unit in layer.units.all():
            row = tally[unit.index]
            assert unit.iou_label == row["label"]
            assert unit.iou_category == row["category"]
            assert unit.iou_score == pytest.approx(float(row["score"]), abs=1e-6)


def test_each_unit_keeps_its_best_concepts_in_order_headed_by_its_label(finished_job):
    for unit in Unit.objects.filter(layer__job=finished_job):
        scores = list(UnitConceptScore.objects.filter(unit=unit).order_by("rank").select_related("concept"))
        assert len(scores) <= 5
        assert [s.iou for s in scores] == sorted((s.iou for s in scores), reverse=True)
        if scores:
            assert scores[0].concept.name == unit.iou_label
            assert scores[0].iou == pytest.approx(unit.iou_score, abs=1e-6)


def test_sentinels_are_low_activation_images_outside_the_units_top_images(finished_job):
    units = Unit.objects.filter(layer__job=finished_job).prefetch_related("exemplars")
    with_sentinels = 0
    for unit in units:
        top = [e for e in unit.exemplars.all() if e.kind == "top"]
        sentinels = [e for e in unit.exemplars.all() if e.kind == "sentinel"]
        assert len(sentinels) <= 3
        with_sentinels += bool(sentinels)
        top_images = {e.image_index for e in top}
        for s in sentinels:
            assert s.image_index not in top_images
            assert s.score <= min(e.score for e in top)
    assert with_sentinels == units.count()


def test_the_job_page_lists_the_layers_and_the_layer_report_shows_strips(finished_job, client, requester):
    client.login(username=requester.username, password=PASSWORD)
    body = client.get(reverse("dissection:job", args=[finished_job.pk])).content.decode()
    assert "conv1" in body and "conv3" in body
    layer = finished_job.layer_set.get(name="conv3")
    body = client.get(reverse("dissection:layer", args=[layer.pk])).content.decode()
    assert body.count('class="strip"') == 10


def test_a_page_started_job_without_a_broker_runs_in_a_background_thread(
    tiny_mixture_dir, media_root, client, requester, django_capture_on_commit_callbacks, monkeypatch
):
    started = []
    monkeypatch.setattr("units.dissection.services._run_in_background", lambda job_id,
                        attempt: started.append((job_id, attempt)))
    job = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"])
    client.login(username=requester.username, password=PASSWORD)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("dissection:job_run", args=[job.pk]))
    job.refresh_from_db()
    assert (job.status, started) == ("succeeded", [])  # tests run jobs synchronously...
    from django.test import override_settings

    with override_settings(UNITCROWD_EAGER_JOBS_IN_THREAD=True), django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("dissection:job_run", args=[job.pk]))
    assert response.status_code == 302  # ...while the site hands them to a thread and returns at once
    job.refresh_from_db()
    assert (job.status, started) == ("queued", [(job.pk, 2)])


def test_the_admin_registers_a_network_through_the_service_and_shows_its_refusals(client, admin, media_root):
    client.login(username=admin.username, password=PASSWORD)
    url = reverse("admin:units_network_add")
    project = lab_project().pk
    response = client.post(
        url,
        {
            "project": project,
            "name": "adm",
            "architecture": "mixturenet",
            "mean": "[0.5, 0.5]",
            "std": "[1, 1]",
            "class_names": "[]",
            "description": "",
        },
    )
    assert response.status_code == 200
    assert "three numbers each" in response.content.decode()
    assert not Network.objects.exists()
    response = client.post(
        url,
        {
            "project": project,
            "name": "adm",
            "architecture": "mixturenet",
            "mean": "[]",
            "std": "[]",
            "class_names": "[]",
            "num_classes": "45",
            "description": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert Network.objects.get().num_classes == 45


def test_the_admin_registers_a_dataset_and_reads_its_vocabulary(client, admin, tiny_mixture_dir):
    client.login(username=admin.username, password=PASSWORD)
    response = client.post(reverse("admin:units_probedataset_add"), {
        "project": lab_project().pk, "name": "adm-data", "kind": "mixture", "path": str(tiny_mixture_dir),
        "description": "",
    })
    assert response.status_code == 302, response.content.decode()[:2000]
    dataset = ProbeDataset.objects.get()
    assert sorted(dataset.concepts.values_list("name", flat=True)) == [str(d) for d in range(10)]
