"""The layer picker: every layer from a shape probe, searchable on the job page, with the plan's
time, disk and memory for the chosen dataset; the API gives the same table."""
import pytest
from rest_framework.test import APIClient

from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, plan_dissection
from tasks.engine.models import load_model
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
    assert rows["heads.head"]["map_size"] == [1, 1]


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
