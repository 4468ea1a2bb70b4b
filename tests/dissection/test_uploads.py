"""Uploads are checked before anything is kept: zip paths, image files, sizes, checkpoints."""
import csv
import io
import zipfile
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tasks.engine.models import MixtureNet
from tests.factories import PASSWORD, lab_project, make_project
from units.dissection.models import Concept, Network, ProbeDataset
from units.dissection.services import DatasetSource, DissectionError, dataset_register, network_register
from units.projects.services import project_delete

pytestmark = pytest.mark.django_db


@pytest.fixture
def datasets_root(settings, tmp_path):
    settings.DATASETS_ROOT = tmp_path / "datasets"
    settings.DATASETS_ROOT.mkdir()
    return settings.DATASETS_ROOT


def zip_of(folder: Path, extra: dict[str, bytes] | None = None, prefix: str = "tiny/") -> io.BytesIO:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, prefix + str(path.relative_to(folder)))
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    buffer.seek(0)
    return buffer


def register_zip(buffer: io.BytesIO, name: str = "zipped", project=None):
    return dataset_register(
        project=project or lab_project(), name=name, kind="broden",
        source=DatasetSource(archive=buffer, archive_size=len(buffer.getbuffer())),
    )


def test_a_good_zip_is_extracted_and_its_vocabulary_read_from_label_csv(tiny_mixture_dir, datasets_root):
    dataset = register_zip(zip_of(tiny_mixture_dir))
    assert dataset.path == f"projects/{dataset.project_id}/zipped"
    assert (datasets_root / "projects" / str(dataset.project_id) / "zipped" / "index.csv").is_file()
    with (tiny_mixture_dir / "label.csv").open() as f:
        expected = sorted((int(r["number"]), r["name"]) for r in csv.DictReader(f))
    assert sorted(Concept.objects.filter(dataset=dataset).values_list("number", "name")) == expected
    with (tiny_mixture_dir / "index.csv").open() as f:
        assert dataset.num_images == sum(1 for _ in csv.DictReader(f))
    assert dataset.categories == ["object"]


@pytest.mark.parametrize("bad_name, message", [
    ("../evil.txt", "outside the dataset folder"),
    ("tiny/../../evil.txt", "outside the dataset folder"),
    ("/etc/evil.txt", "absolute path"),
    ("tiny/images/notes.txt", "not an image"),
])
def test_a_zip_with_a_bad_entry_is_refused_and_nothing_is_left(tiny_mixture_dir, datasets_root, bad_name, message):
    with pytest.raises(DissectionError, match=message):
        register_zip(zip_of(tiny_mixture_dir, {bad_name: b"x"}))
    assert list(datasets_root.iterdir()) == []
    assert not (datasets_root.parent / "evil.txt").exists()
    assert not ProbeDataset.objects.exists()


def test_an_undecodable_image_is_refused_and_nothing_is_left(tiny_mixture_dir, datasets_root):
    with pytest.raises(DissectionError, match="cannot be decoded"):
        register_zip(zip_of(tiny_mixture_dir, {"tiny/images/99999.png": b"not really a png"}))
    assert list(datasets_root.iterdir()) == []


def test_a_zip_larger_than_the_upload_limit_is_refused(tiny_mixture_dir, datasets_root, settings):
    buffer = zip_of(tiny_mixture_dir)
    settings.UPLOAD_MAX_BYTES = len(buffer.getbuffer()) - 1
    with pytest.raises(DissectionError, match="UPLOAD_MAX_BYTES"):
        register_zip(buffer)
    assert list(datasets_root.iterdir()) == []


def test_a_zip_that_unpacks_beyond_the_limit_is_refused(tiny_mixture_dir, datasets_root, settings):
    settings.DATASET_ZIP_MAX_UNPACKED_BYTES = 2048
    with pytest.raises(DissectionError, match="DATASET_ZIP_MAX_UNPACKED_BYTES"):
        register_zip(zip_of(tiny_mixture_dir, {"tiny/big.bin": b"\0" * 4096}))
    assert list(datasets_root.iterdir()) == []


def test_a_zip_that_is_not_a_dataset_is_refused_with_the_missing_file(datasets_root):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("data/readme.txt", "hello")
    buffer.seek(0)
    with pytest.raises(DissectionError, match="index.csv|does not exist|no image"):
        register_zip(buffer)
    assert list(datasets_root.iterdir()) == []


def test_a_checkpoint_that_fits_is_kept_and_one_that_does_not_is_refused(tmp_path, media_root):
    good = tmp_path / "good.pt"
    torch.save(MixtureNet(num_classes=45).state_dict(), good)
    network = network_register(project=lab_project(), name="good", architecture="mixturenet", checkpoint=good)
    assert network.checkpoint and Path(network.checkpoint.path).is_file()
    assert network.num_classes is None or network.num_classes == 45

    with pytest.raises(DissectionError, match="does not fit architecture 'resnet18'"):
        network_register(project=lab_project(), name="bad", architecture="resnet18", checkpoint=good)
    assert not Network.objects.filter(name="bad").exists()


def test_the_network_page_shows_a_checkpoint_mismatch_as_a_form_error(client, requester, tmp_path, media_root):
    good = tmp_path / "good.pt"
    torch.save(MixtureNet(num_classes=45).state_dict(), good)
    client.login(username=requester.username, password=PASSWORD)
    upload = SimpleUploadedFile("net.pt", good.read_bytes())
    response = client.post(reverse("dissection:network_new"), {"name": "n1", "architecture": "alexnet",
                                                               "checkpoint": upload})
    assert response.status_code == 200
    assert "does not fit architecture" in response.content.decode()
    assert not Network.objects.exists()
    upload = SimpleUploadedFile("net.pt", good.read_bytes())
    response = client.post(reverse("dissection:network_new"), {"name": "n1", "architecture": "mixturenet",
                                                               "checkpoint": upload})
    assert response.status_code == 302
    assert Network.objects.get().checkpoint


def test_an_unreadable_checkpoint_upload_is_named_by_its_file_name_not_a_temporary_path(client, requester, media_root):
    client.force_login(requester)
    upload = SimpleUploadedFile("my-weights.pt", b"these bytes are not a checkpoint")
    response = client.post(reverse("dissection:network_new"), {"name": "n1", "architecture": "mixturenet",
                                                               "checkpoint": upload})
    page = response.content.decode()
    assert response.status_code == 200
    assert "uploaded file &#x27;my-weights.pt&#x27;" in page
    assert "/tmp" not in page and ".pt holds" not in page
    assert not Network.objects.exists()


def test_the_dataset_page_shows_a_bad_zip_as_a_form_error(client, requester, tiny_mixture_dir, datasets_root):
    client.login(username=requester.username, password=PASSWORD)
    upload = SimpleUploadedFile("d.zip", zip_of(tiny_mixture_dir, {"../x": b"1"}).getvalue())
    response = client.post(reverse("dissection:dataset_new"), {"name": "d", "kind": "broden", "archive": upload})
    assert response.status_code == 200
    assert "outside the dataset folder" in response.content.decode()
    assert not ProbeDataset.objects.exists()


def test_two_projects_upload_a_dataset_of_the_same_name_into_their_own_folders(tiny_mixture_dir, datasets_root,
                                                                              requester,
                                                                              django_capture_on_commit_callbacks):
    alpha, beta = make_project("alpha", owner=requester), make_project("beta", owner=requester)
    a = register_zip(zip_of(tiny_mixture_dir), name="digits", project=alpha)
    b = register_zip(zip_of(tiny_mixture_dir, extra={"tiny/only-beta.txt": b"beta"}), name="digits", project=beta)
    assert a.path != b.path
    assert not (datasets_root / a.path / "only-beta.txt").exists()
    assert (datasets_root / b.path / "only-beta.txt").exists()
    # Deleting one project removes its own upload, and nothing of the other's.
    with django_capture_on_commit_callbacks(execute=True):
        project_delete(project=alpha, confirm_name="alpha", deleted_by=requester)
    assert not (datasets_root / a.path).exists()
    assert (datasets_root / b.path / "index.csv").is_file() and ProbeDataset.objects.filter(pk=b.pk).exists()
    assert ProbeDataset.objects.get(pk=b.pk).engine_spec.endswith(b.path)


def test_a_dataset_stored_before_per_project_folders_is_still_read(tiny_mixture_dir, datasets_root):
    import shutil

    shutil.copytree(tiny_mixture_dir, datasets_root / "older")
    dataset = dataset_register(project=lab_project(), name="older", kind="broden", source=DatasetSource(path="older"))
    assert dataset.path == "older" and dataset.num_images > 0
    assert dataset.engine_spec == f"broden:{datasets_root / 'older'}"


def test_another_projects_upload_cannot_be_registered_by_path(tiny_mixture_dir, datasets_root, requester):
    beta = make_project("beta", owner=requester)
    b = register_zip(zip_of(tiny_mixture_dir), name="digits", project=beta)
    for path in (b.path, str(datasets_root / b.path), f"projects/{beta.pk}/../{beta.pk}/digits"):
        with pytest.raises(DissectionError, match="outside the dataset folders"):
            dataset_register(project=lab_project(), name="stolen", kind="broden", source=DatasetSource(path=path))
    # Its own project may (a second name for the same folder).
    again = dataset_register(project=beta, name="again", kind="broden", source=DatasetSource(path=b.path))
    assert again.num_images == b.num_images
