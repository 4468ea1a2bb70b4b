"""The platform API: requesters only, writes through the services, filters on units."""
import pytest
from rest_framework.test import APIClient

from tests.factories import make_job
from units.dissection.models import DissectionJob

pytestmark = pytest.mark.django_db

ENDPOINTS = ["/api/networks/", "/api/datasets/", "/api/jobs/", "/api/layers/", "/api/units/", "/api/exemplars/"]


def api_as(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_anonymous_callers_get_401_everywhere():
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1)
    for url in ENDPOINTS + [f"/api/jobs/{job.pk}/status/"]:
        assert api_as().get(url).status_code == 401, url
    assert api_as().post(f"/api/jobs/{job.pk}/start/").status_code == 401


def test_annotators_get_403_everywhere(annotator):
    job = make_job(layers={"conv3": 1}, exemplars_per_unit=1)
    for url in ENDPOINTS + [f"/api/jobs/{job.pk}/status/"]:
        assert api_as(annotator).get(url).status_code == 403, url
    assert api_as(annotator).post(f"/api/jobs/{job.pk}/start/").status_code == 403
    assert api_as(annotator).post("/api/networks/", {"name": "x", "architecture": "mixturenet"}).status_code == 403


def test_units_filter_by_layer_label_category_and_iou(requester):
    job = make_job(layers={"conv2": 2, "conv3": 4}, exemplars_per_unit=1)  # unit u: label str(u), IoU 0.02*(u+1)
    conv3 = job.layer_set.get(name="conv3")
    client = api_as(requester)
    rows = client.get("/api/units/", {"layer": conv3.pk}).json()["results"]
    assert [r["index"] for r in rows] == [0, 1, 2, 3]
    rows = client.get("/api/units/", {"layer": conv3.pk, "iou_min": 0.05}).json()["results"]
    assert [r["index"] for r in rows] == [2, 3]  # 0.06 and 0.08
    rows = client.get("/api/units/", {"job": job.pk, "label": "1"}).json()["results"]
    assert sorted((r["layer_name"], r["index"]) for r in rows) == [("conv2", 1), ("conv3", 1)]
    assert client.get("/api/units/", {"job": job.pk, "category": "scene"}).json()["count"] == 0


def test_a_job_is_created_and_started_through_the_api(requester, tiny_mixture_dir, media_root,
                                                      django_capture_on_commit_callbacks):
    from tests.factories import make_registered_pipeline

    template = make_registered_pipeline(tiny_mixture_dir, layers=["conv3"])
    client = api_as(requester)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/api/jobs/", {
            "network": template.network_id, "dataset": template.dataset_id, "layers": ["conv3"], "top_k": 2,
            "start": True,
        }, format="json")
    assert response.status_code == 201, response.content
    job = DissectionJob.objects.get(pk=response.json()["id"])
    assert job.status == "succeeded", job.error_message
    status = client.get(f"/api/jobs/{job.pk}/status/").json()
    assert status["status"] == "succeeded" and status["progress"] == 1.0
    refused = client.post("/api/jobs/", {"network": template.network_id, "dataset": template.dataset_id,
                                         "layers": ["conv3"], "top_k": 1000}, format="json")
    assert refused.status_code == 400
    assert "top_k" in str(refused.json())


def test_units_filter_by_the_crowds_label_and_interpretability(requester):
    from units.results.models import UnitAggregate

    job = make_job(layers={"conv3": 3}, exemplars_per_unit=1)
    u0, u1, u2 = job.layer_set.get().units.order_by("index")
    UnitAggregate.objects.create(unit=u0, crowd_word="seven", category="object", interpretable=True)
    UnitAggregate.objects.create(unit=u1, crowd_word="stroke", category="part", interpretable=False)
    client = api_as(requester)  # u2 has no aggregate yet: neither interpretable nor not
    assert [r["index"] for r in client.get("/api/units/", {"job": job.pk,
                                                           "interpretable": "true"}).json()["results"]] == [0]
    assert [r["index"] for r in client.get("/api/units/", {"job": job.pk,
                                                           "interpretable": "false"}).json()["results"]] == [1]
    assert [r["index"] for r in client.get("/api/units/", {"job": job.pk,
                                                           "crowd_label": "Seven"}).json()["results"]] == [0]
    assert [r["index"] for r in client.get("/api/units/", {"job": job.pk,
                                                           "crowd_category": "part"}).json()["results"]] == [1]
    bad = client.get("/api/units/", {"job": job.pk, "interpretable": "maybe"})
    assert bad.status_code == 400
    assert "interpretable" in bad.json()
