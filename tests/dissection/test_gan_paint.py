"""The paint page and its JSON endpoint: who may use them, what they refuse, and that they show the engine's edit."""
import base64
import io
import json

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from tests.dissection.gan_helpers import make_finished_generator_job
from tests.factories import PASSWORD, make_job
from units.dissection import paint as paint_module

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoint_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gan-paint")


@pytest.fixture
def job(checkpoint_dir, media_root):
    return make_finished_generator_job(checkpoint_dir)


def api(job_id: int) -> str:
    return reverse("api-job-paint", args=[job_id])


def post(client, job_id: int, body) -> object:
    return client.post(api(job_id), data=json.dumps(body), content_type="application/json")


def picture(data_url: str) -> np.ndarray:
    assert data_url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def engine_edit(job, *, seed: int, **kwargs):
    """The engine's own edit of the job's generator, loaded afresh (not through the page's cache)."""
    from tasks.engine.gan.edit import Latent, edit_image
    from tasks.engine.gan.models import load_generator

    generator = load_generator(job.network.architecture, job.network.checkpoint.path)
    return edit_image(generator, latent=Latent(seed=seed, sample_seed=job.sample_seed), **kwargs)


# -- who may paint -----------------------------------------------------------------------------------


@pytest.mark.parametrize("persona, page_status, api_status", [
    (None, 302, 401), ("annotator", 403, 403), ("requester", 200, 200), ("admin", 200, 200),
])
def test_only_requesters_and_admins_may_paint(job, client, request, persona, page_status, api_status):
    if persona:
        client.login(username=request.getfixturevalue(persona).username, password=PASSWORD)
    page = client.get(reverse("dissection:paint", args=[job.pk]))
    assert page.status_code == page_status
    if persona is None:
        assert "/login" in page["Location"] or "login" in page["Location"]
    response = post(client, job.pk, {"layer": "layer2", "seed": 1, "units": [3]})
    assert response.status_code == api_status
    if api_status == 200:
        assert response.json()["units"][0]["number"] == 3
    else:
        assert "before" not in response.json()


def test_an_annotators_token_is_refused_too(job, client, annotator):
    from knox.models import AuthToken

    _, token = AuthToken.objects.create(user=annotator)
    response = client.post(api(job.pk), data=json.dumps({"layer": "layer2", "seed": 1, "units": [3]}),
                           content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 403


# -- the edit is the engine's edit ---------------------------------------------------------------------


def test_removing_units_in_a_box_shows_exactly_the_engines_before_and_after(job, client, requester):
    client.force_login(requester)
    response = post(client, job.pk, {"layer": "layer2", "seed": 5, "mode": "remove", "units": [2, 9, 12],
                                     "box": [4, 4, 28, 28]})
    assert response.status_code == 200, response.content
    answer = response.json()
    expected = engine_edit(job, layer="layer2", units=[1, 8, 11], mode="remove", seed=5, region=(4, 4, 28, 28))
    assert np.array_equal(picture(answer["before"]), expected.before)
    assert np.array_equal(picture(answer["after"]), expected.after)
    assert not np.array_equal(expected.before, expected.after)  # the edit changed something
    assert [u["number"] for u in answer["units"]] == [2, 9, 12]
    assert answer["units"][0]["url"] == reverse("dissection:unit", args=[job.layer_set.get().units.get(index=1).pk])


def test_inserting_the_units_labelled_7_uses_the_jobs_concept_means_and_a_painted_grid(
        job, client, requester, media_root):
    client.force_login(requester)
    grid = [[0] * 8 for _ in range(8)]
    grid[2][3] = grid[2][4] = grid[5][5] = 1
    response = post(client, job.pk, {"layer": "layer2", "seed": 0, "mode": "insert", "label": "7",
                                     "label_source": "iou", "grid": grid})
    assert response.status_code == 200, response.content
    answer = response.json()
    # The helper labels unit index u with str(u % 10): of 16 units only index 7 (number 8) is a "7".
    assert [u["number"] for u in answer["units"]] == [8]
    means = np.load(media_root / job.output_dir / "layer2" / "concept_means.npy")
    assert answer["values"] == pytest.approx([float(means[7, 7])])  # concept "7" is column 7
    mask = np.kron(np.array(grid, dtype=bool), np.ones((4, 4), dtype=bool))
    expected = engine_edit(job, layer="layer2", units=[7], mode="insert", seed=0, region=mask, values=[means[7, 7]])
    assert np.array_equal(picture(answer["after"]), expected.after)
    assert np.array_equal(picture(answer["before"]), expected.before)


def test_inserting_units_picked_by_number_uses_the_engines_default_values(job, client, requester):
    client.force_login(requester)
    answer = post(client, job.pk, {"layer": "layer2", "seed": 7, "mode": "insert", "units": [16, 1, 5],
                                   "box": [0, 0, 16, 32]}).json()
    # The engine picks the values itself when given none: the page must show exactly that edit.
    expected = engine_edit(job, layer="layer2", units=[15, 0, 4], mode="insert", seed=7, region=(0, 0, 16, 32))
    assert np.array_equal(picture(answer["after"]), expected.after)
    assert not np.array_equal(expected.before, expected.after)
    assert [u["number"] for u in answer["units"]] == [16, 1, 5]


def test_units_can_be_picked_by_their_crowd_label(job, client, requester):
    from units.results.models import UnitAggregate

    unit = job.layer_set.get().units.get(index=4)
    UnitAggregate.objects.create(unit=unit, crowd_word="loop", category="object")
    client.force_login(requester)
    answer = post(client, job.pk, {"layer": "layer2", "seed": 2, "label": "loop", "label_source": "crowd"}).json()
    assert [(u["number"], u["crowd_label"]) for u in answer["units"]] == [(5, "loop")]
    refused = post(client, job.pk, {"layer": "layer2", "seed": 2, "label": "loop", "label_source": "iou"})
    assert refused.status_code == 400 and "labelled 'loop'" in refused.json()["detail"]


def test_the_generator_is_loaded_once_per_process_and_again_when_its_checkpoint_changes(job, client, requester):
    paint_module._load.cache_clear()
    client.force_login(requester)
    for seed in (1, 2, 3):
        assert post(client, job.pk, {"layer": "layer2", "seed": seed, "units": [1]}).status_code == 200
    assert paint_module._load.cache_info().misses == 1
    import os

    path = job.network.checkpoint.path
    os.utime(path, (os.path.getatime(path), os.path.getmtime(path) + 10))
    assert post(client, job.pk, {"layer": "layer2", "seed": 1, "units": [1]}).status_code == 200
    assert paint_module._load.cache_info().misses == 2


# -- bad input: a clear 400 ------------------------------------------------------------------------------


@pytest.mark.parametrize("body, message", [
    ({"layer": "layer2", "seed": 1, "units": [3], "box": [0, 0, 40, 40]}, "outside the 32x32 image"),
    ({"layer": "layer2", "seed": 1, "units": [3], "box": [10, 10, 10, 20]}, "outside the 32x32 image or empty"),
    ({"layer": "layer2", "seed": 1, "units": [17]}, "Unknown unit(s) 17"),
    ({"layer": "layer2", "seed": 1, "units": [0]}, "Unknown unit(s) 0"),
    ({"layer": "layer2", "seed": 1, "units": [3, 3]}, "named twice"),
    ({"layer": "layer2", "seed": 1}, "No unit selected"),
    ({"layer": "layer2", "seed": 1, "label": "cat"}, "No unit of layer2 is labelled 'cat'"),
    ({"layer": "layer9", "seed": 1, "units": [3]}, "did not dissect a layer 'layer9'"),
    ({"layer": "layer2", "seed": 1, "units": [3], "grid": [[0] * 8] * 8}, "empty"),
    ({"layer": "layer2", "seed": 1, "units": [3], "grid": [[1] * 5] * 5}, "does not tile the 32x32 image"),
    ({"layer": "layer2", "seed": 1, "units": [3], "grid": [[1, 0], [1]]}, "rectangle"),
    ({"layer": "layer2", "seed": 1, "units": [3], "box": [0, 0, 8, 8], "grid": [[1]]}, "not both"),
    ({"layer": "layer2", "seed": -1, "units": [3]}, "seed"),
    ({"layer": "layer2", "seed": "seven", "units": [3]}, "seed"),
    ({"layer": "layer2", "seed": 1, "units": [3], "mode": "explode"}, "mode"),
    ({"layer": "layer2", "seed": 1, "units": [3], "box": [1, 2, 3]}, "box"),
    ({"layer": "layer2", "seed": 1, "units": [3], "limit": 0}, "limit"),
    ({"seed": 1, "units": [3]}, "layer"),
])
def test_bad_paint_requests_are_a_clear_400(job, client, requester, body, message):
    client.force_login(requester)
    response = post(client, job.pk, body)
    assert response.status_code == 400
    assert message in json.dumps(response.json()), response.json()


def test_a_body_that_is_not_json_is_a_400_and_an_unknown_job_a_404(job, client, requester):
    client.force_login(requester)
    response = client.post(api(job.pk), data="{not json", content_type="application/json")
    assert response.status_code == 400 and "JSON" in response.json()["detail"]
    assert post(client, job.pk + 999, {"layer": "layer2", "seed": 1, "units": [3]}).status_code == 404


def test_a_generator_whose_checkpoint_vanished_is_a_clear_400(job, client, requester):
    from pathlib import Path

    Path(job.network.checkpoint.path).unlink()
    client.force_login(requester)
    response = post(client, job.pk, {"layer": "layer2", "seed": 1, "units": [3]})
    assert response.status_code == 400 and "checkpoint of" in response.json()["detail"]


def test_a_classifier_job_cannot_be_painted(client, requester, media_root):
    classifier = make_job()
    client.force_login(requester)
    response = post(client, classifier.pk, {"layer": "conv3", "seed": 1, "units": [1]})
    assert response.status_code == 400 and "painting needs a generator job" in response.json()["detail"]
    page = client.get(reverse("dissection:paint", args=[classifier.pk]))
    assert page.status_code == 302 and page["Location"] == reverse("dissection:job", args=[classifier.pk])


# -- the page without JavaScript -----------------------------------------------------------------------------


def test_the_page_shows_before_and_after_side_by_side_with_links_to_the_units(job, client, requester):
    client.force_login(requester)
    page = client.get(reverse("dissection:paint", args=[job.pk])).content.decode()
    assert page.count('name="cell"') == 64 and 'aria-label="row 1, column 1"' in page
    response = client.post(reverse("dissection:paint", args=[job.pk]), {
        "layer": "layer2", "seed": "4", "mode": "remove", "units": "3, 6", "label_source": "any",
        "cell": ["1,1", "1,2", "2,2"],
    })
    body = response.content.decode()
    assert response.status_code == 200
    assert body.count("data:image/png;base64,") == 2
    layer = job.layer_set.get()
    for index in (2, 5):
        assert reverse("dissection:unit", args=[layer.units.get(index=index).pk]) in body
    assert body.count(" checked") >= 3  # the painted cells stay painted


def test_the_page_shows_a_refusal_as_a_form_error_with_status_400(job, client, requester):
    client.force_login(requester)
    response = client.post(reverse("dissection:paint", args=[job.pk]), {
        "layer": "layer2", "seed": "4", "mode": "remove", "units": "99", "label_source": "any"})
    assert response.status_code == 400
    assert "Unknown unit(s) 99" in response.content.decode()
