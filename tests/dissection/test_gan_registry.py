"""Generators and segmenters are registered only when the engine loads them; jobs pair them right."""
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from rest_framework.test import APIClient

from tasks.engine.models import MixtureNet
from tests.dissection.gan_helpers import make_generator_job, write_tiny_checkpoints
from tests.factories import PASSWORD, lab_project, make_registered_pipeline
from units.dissection.models import Concept, DissectionJob, Network, ProbeDataset
from units.dissection.services import (
    DatasetSource,
    DissectionError,
    JobSettings,
    NetworkInput,
    dataset_register,
    job_create,
    job_start,
    network_register,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return write_tiny_checkpoints(tmp_path_factory.mktemp("gan-registry"))


@pytest.fixture
def datasets_root(settings, tmp_path):
    settings.DATASETS_ROOT = tmp_path / "datasets"
    settings.DATASETS_ROOT.mkdir()
    return settings.DATASETS_ROOT


def test_a_classifier_checkpoint_is_refused_as_a_generator_and_nothing_is_kept(tmp_path, media_root):
    path = tmp_path / "mixturenet.pt"
    torch.save(MixtureNet().state_dict(), path)
    with pytest.raises(DissectionError, match="dcgan32"):
        network_register(project=lab_project(), name="wrong", architecture="dcgan32", checkpoint=path)
    assert not Network.objects.exists()
    assert not list(media_root.rglob("*.pt"))


def test_a_file_that_is_not_a_checkpoint_is_refused_as_a_generator(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(DissectionError, match="not a checkpoint|cannot|not a"):
        network_register(project=lab_project(), name="notes", architecture="dcgan32", checkpoint=path)
    assert not Network.objects.exists()


def test_a_generator_takes_no_classes_or_normalisation(checkpoints):
    with pytest.raises(DissectionError, match="no classes and no input normalisation"):
        network_register(
            project=lab_project(),
            name="g",
            architecture="dcgan32",
            checkpoint=checkpoints[0],
            inputs=NetworkInput(mean=[0.5] * 3, std=[0.2] * 3),
        )


def test_a_generator_checkpoint_is_refused_as_a_segmenter(checkpoints):
    with pytest.raises(DissectionError, match="generator checkpoint, not a segmenter"):
        dataset_register(project=lab_project(), name="seg", kind="segmenter",
                         source=DatasetSource(path=str(checkpoints[0])), any_path=True)
    assert not ProbeDataset.objects.exists()


def test_a_missing_segmenter_file_is_named(tmp_path):
    with pytest.raises(DissectionError, match="does not exist"):
        dataset_register(project=lab_project(), name="seg", kind="segmenter",
                         source=DatasetSource(path=str(tmp_path / "nope.pt")),
                         any_path=True)


def test_the_pages_register_an_uploaded_generator_and_segmenter(client, requester, checkpoints, datasets_root,
                                                                media_root):
    client.login(username=requester.username, password=PASSWORD)
    gen_file, seg_file = checkpoints
    response = client.post(reverse("dissection:network_new"), {
        "name": "paged-gan", "architecture": "dcgan32",
        "checkpoint": SimpleUploadedFile("gan.pt", gen_file.read_bytes())})
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Network.objects.get(name="paged-gan").kind == "generator"
    response = client.post(reverse("dissection:dataset_new"), {
        "name": "paged-seg", "kind": "segmenter", "archive": SimpleUploadedFile("seg.pt", seg_file.read_bytes())})
    assert response.status_code == 302, response.content.decode()[:3000]
    segmenter = ProbeDataset.objects.get(name="paged-seg")
    assert segmenter.path == f"projects/{segmenter.project_id}/segmenters/paged-seg.pt"
    assert (datasets_root / segmenter.path).is_file()
    assert Concept.objects.filter(dataset=segmenter).count() == 10


def test_a_bad_segmenter_upload_is_a_form_error_and_leaves_no_file(client, requester, checkpoints, datasets_root):
    client.login(username=requester.username, password=PASSWORD)
    response = client.post(reverse("dissection:dataset_new"), {
        "name": "bad-seg", "kind": "segmenter", "archive": SimpleUploadedFile("g.pt", checkpoints[0].read_bytes())})
    assert response.status_code == 200
    body = response.content.decode()
    assert "not a segmenter" in body and "g.pt" in body
    assert not ProbeDataset.objects.exists()
    assert not list(datasets_root.rglob("*.pt"))


def test_jobs_pair_generators_with_segmenters_and_classifiers_with_image_datasets(tmp_path, tiny_mixture_dir):
    generator_job = make_generator_job(tmp_path)
    classifier_job = make_registered_pipeline(tiny_mixture_dir)
    with pytest.raises(DissectionError, match="is a generator: its probe is a segmenter"):
        job_create(network=generator_job.network, dataset=classifier_job.dataset, options=JobSettings(["layer2"]))
    with pytest.raises(DissectionError, match="is a segmenter, the probe of a generator"):
        job_create(network=classifier_job.network, dataset=generator_job.dataset, options=JobSettings(["conv3"]))
    with pytest.raises(DissectionError, match="shards = 1"):
        job_create(network=generator_job.network, dataset=generator_job.dataset,
                   options=JobSettings(["layer2"], shards=2))
    with pytest.raises(DissectionError, match="samples must be between"):
        job_create(network=generator_job.network, dataset=generator_job.dataset,
                   options=JobSettings(["layer2"], samples=0))
    with pytest.raises(DissectionError, match="samples is for generator jobs"):
        job_create(network=classifier_job.network, dataset=classifier_job.dataset,
                   options=JobSettings(["conv3"], samples=10))
    assert DissectionJob.objects.count() == 2


def test_the_api_creates_a_generator_job_and_reports_its_kind(tmp_path, requester):
    made = make_generator_job(tmp_path)
    client = APIClient()
    client.force_authenticate(requester)
    response = client.post("/api/jobs/", {"network": made.network.pk, "dataset": made.dataset.pk, "layers": ["layer1"],
                                          "samples": 12, "sample_seed": 3}, format="json")
    assert response.status_code == 201, response.json()
    assert (response.json()["kind"], response.json()["samples"], response.json()["sample_seed"]) == ("generator", 12, 3)
    assert client.get(f"/api/networks/{made.network.pk}/").json()["kind"] == "generator"


def test_a_generator_job_with_an_unknown_layer_fails_with_the_engines_message(tmp_path, media_root,
                                                                              django_capture_on_commit_callbacks):
    job = make_generator_job(tmp_path, layers=("layer9",), samples=4)
    with django_capture_on_commit_callbacks(execute=True):
        job_start(job=job)
    job.refresh_from_db()
    assert job.status == "failed" and "layer9" in job.error_message
    assert not job.layer_set.exists()
