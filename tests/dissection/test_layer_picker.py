"""The layer picker: every layer from a shape probe, searchable on the job page, with the plan's
time, disk and memory for the chosen dataset; the API gives the same table."""
import pytest
from rest_framework.test import APIClient

from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, plan_dissection
from tasks.engine.models import load_model
from tasks.engine.layers import layer_table
from tests.factories import lab_project, make_registered_pipeline
from units.dissection.services import network_register

pytestmark = pytest.mark.django_db


def _api(user) -> APIClient:
    api = APIClient()
    api.force_authenticate(user)
    return api


def test_the_api_lists_a_vits_layers_with_their_reading(requester, media_root):
    vit = network_register(project=lab_project(), name="vit", architecture="vit_b_16")
    body = _api(requester).get(f"/api/networks/{vit.pk}/layers/").json()
    assert body["image_size"] == 224 and body["plan"] is None
    rows = {r["name"]: r for r in body["layers"]}
    block = rows["encoder.layers.encoder_layer_11"]
    assert block["shape"] == [197, 768] and block["units"] == 768 and block["map_size"] == [14, 14]
    assert "first 1 token(s) (class/register) dropped" in block["reading"]
    head = rows["heads.head"]  # the classifier's logits: a pooled vector, shown as not dissectable and why
    assert head["units"] is None and head["map_size"] is None
    assert "pooled vector of 1000 units" in head["reading"] and "earlier layer with a spatial map" in head["reading"]


def test_the_api_plans_the_chosen_layers_on_a_dataset_as_the_engine_would(requester, tiny_mixture_dir):
    job = make_registered_pipeline(tiny_mixture_dir)
    url = f"/api/networks/{job.network_id}/layers/?dataset={job.dataset_id}&layers=conv2,conv3"
    plan = _api(requester).get(url).json()["plan"]
    engine = plan_dissection(load_model("mixturenet", None, num_classes=45),
                             open_dataset(job.dataset.engine_spec), DissectOptions(layers=["conv2", "conv3"]))
    assert plan["lines"] == engine.lines()
    assert plan["images"] == engine.images and plan["memory_bytes"] == engine.memory_bytes
    assert plan["flops_per_image"] > 0 and plan["estimated_seconds"]["cpu"] > plan["estimated_seconds"]["cuda"] > 0


def test_the_api_names_a_layer_that_does_not_exist_or_a_missing_dataset(requester, tiny_mixture_dir):
    job = make_registered_pipeline(tiny_mixture_dir)
    api = _api(requester)
    bad = api.get(f"/api/networks/{job.network_id}/layers/?dataset={job.dataset_id}&layers=conv9")
    assert bad.status_code == 400 and "layer 'conv9' is not in the model" in bad.json()["detail"]
    missing = api.get(f"/api/networks/{job.network_id}/layers/?dataset=99999&layers=conv3")
    assert missing.status_code == 400 and "No dataset with id '99999'" in missing.json()["detail"]


def test_the_job_page_shows_the_searchable_picker_and_the_plan_of_the_choice(client, requester, tiny_mixture_dir):
    job = make_registered_pipeline(tiny_mixture_dir)
    client.force_login(requester)
    page = client.get(f"/jobs/new/?network={job.network_id}&dataset={job.dataset_id}&layers=conv3").content.decode()
    assert 'id="layer-picker"' in page and 'type="search"' in page and "layer_picker.js" in page
    assert 'data-layer="conv3"' in page and "map of 10 units at 16x16" in page
    assert "forward pass(es)" in page and "on a CPU" in page
    assert 'value="conv3"' in page  # the choice stays in the form


def test_registering_a_network_on_the_page_leads_to_its_layers(client, requester, media_root):
    client.force_login(requester)
    response = client.post("/networks/new/", {"name": "eff", "architecture": "efficientnet_b0"})
    assert response.status_code == 302 and "/jobs/new/?network=" in response["Location"]
    page = client.get(response["Location"]).content.decode()
    assert 'data-layer="features.8"' in page


def test_a_pooled_layer_is_refused_with_the_fix_in_the_api_the_page_and_the_command(
        client, requester, tiny_mixture_dir, media_root):
    from django.core.management import CommandError, call_command

    from units.dissection.models import DissectionJob

    job = make_registered_pipeline(tiny_mixture_dir)
    before = DissectionJob.objects.count()
    fix = "choose an earlier layer with a spatial map"

    refused = _api(requester).post("/api/jobs/", {"network": job.network_id, "dataset": job.dataset_id,
                                                  "layers": ["conv3", "fc"]}, format="json")
    assert refused.status_code == 400
    assert "Layer 'fc' outputs a pooled vector of 45 units" in str(refused.json()) and fix in str(refused.json())

    client.force_login(requester)
    page = client.post("/jobs/new/", {"network": job.network_id, "dataset": job.dataset_id, "layers": "pool3",
                                      "top_k": 5, "quantile": 0.005, "iou_rule": "lite", "batch_size": 8,
                                      "shards": 1})
    assert page.status_code == 200 and fix in page.content.decode()

    with pytest.raises(CommandError, match="Layer 'fc' outputs a pooled vector"):
        call_command("run_dissection", "--project", job.project.name, "--network", job.network.name,
                     "--dataset", job.dataset.name, "--layers", "fc")
    assert DissectionJob.objects.count() == before  # no job from any of the three

    table = _api(requester).get(f"/api/networks/{job.network_id}/layers/").json()
    rows = {r["name"]: r for r in table["layers"]}
    assert rows["conv3"]["units"] == 10 and rows["fc"]["units"] is None and fix in rows["fc"]["reading"]


def test_an_architecture_not_registered_yet_lists_its_layers_for_those_who_may_register(requester, annotator,
                                                                                          transactional_db):
    from tests.factories import make_user
    from units.projects.models import Membership

    url = "/api/v1/architectures/layers/"
    api = _api(requester)
    table = api.get(url, {"architecture": "convnext_tiny", "input_size": 64}).json()
    rows = {r["name"]: r for r in table["layers"]}
    assert table["architecture"] == "convnext_tiny" and table["image_size"] == 64
    assert rows["features.7"]["units"] == 768 and rows["features.7"]["map_size"] == [2, 2]
    assert rows["classifier.2"]["units"] is None and "pooled vector" in rows["classifier.2"]["reading"]
    # the same table as the engine's own probe of the built network
    engine = [r.to_json() for r in layer_table(load_model("convnext_tiny", None), 64)]
    assert table["layers"] == engine

    unknown = api.get(url, {"architecture": "convnext_tiney"})
    assert unknown.status_code == 400 and "close names: convnext_tiny" in unknown.json()["detail"]
    assert "register it" in api.get(url, {"architecture": "program"}).json()["detail"]
    assert api.get(url, {"architecture": "resnet18", "input_size": "big"}).status_code == 400
    assert api.get(url, {"architecture": "resnet18", "input_size": 99999}).status_code == 400

    viewer = make_user("vera")
    Membership.objects.create(project=lab_project(), user=viewer, role="viewer")
    for who in (annotator, viewer):  # neither may register a network
        assert _api(who).get(url, {"architecture": "resnet18"}).status_code == 403
    assert APIClient().get(url, {"architecture": "resnet18"}).status_code == 401


def test_the_registration_page_carries_the_live_layer_table(client, requester):
    client.force_login(requester)
    page = client.get("/networks/new/").content.decode()
    assert 'id="architecture-layers"' in page and 'data-url="/api/v1/architectures/layers/"' in page
    assert "architecture_layers.js" in page
