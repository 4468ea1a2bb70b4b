"""Decompression bombs and oversize images are form errors that leave nothing behind; dataset
folders named by requesters must lie under DATASETS_ROOT (or DATASET_PATHS_ALLOWED)."""
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from tests.factories import PASSWORD, lab_project
from units.dissection.models import ProbeDataset
from units.dissection.services import DatasetSource, DissectionError, dataset_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def datasets_root(settings, tmp_path):
    settings.DATASETS_ROOT = tmp_path / "datasets"
    settings.DATASETS_ROOT.mkdir()
    (settings.DATASETS_ROOT / "kept-before.txt").write_text("an earlier file")
    return settings.DATASETS_ROOT


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height (1-bit grey): a decompression bomb when large."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
            + chunk(b"IEND", b""))


def zip_with(folder: Path, extra: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, "tiny/" + str(path.relative_to(folder)))
        for name, data in extra.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def post_zip(client, requester, data: bytes):
    client.login(username=requester.username, password=PASSWORD)
    upload = SimpleUploadedFile("d.zip", data, content_type="application/zip")
    return client.post(reverse("dissection:dataset_new"), {"name": "d", "kind": "broden", "archive": upload})


def test_a_decompression_bomb_is_a_form_error_and_leaves_datasets_root_unchanged(
        client, requester, tiny_mixture_dir, datasets_root):
    before = listing(datasets_root)
    response = post_zip(client, requester, zip_with(tiny_mixture_dir,
                                                    {"tiny/images/bomb.png": png_claiming(100_000, 100_000)}))
    assert response.status_code == 200
    assert "decompression bomb" in response.content.decode()
    assert listing(datasets_root) == before and not ProbeDataset.objects.exists()


def test_an_oversize_image_is_refused_by_its_header_before_decoding(client, requester, tiny_mixture_dir,
                                                                   datasets_root, settings):
    settings.UPLOAD_IMAGE_MAX_PIXELS = 10_000
    before = listing(datasets_root)
    response = post_zip(client, requester, zip_with(tiny_mixture_dir, {"tiny/images/big.png": png_claiming(101, 100)}))
    page = response.content.decode()
    assert response.status_code == 200 and "101x100 pixels" in page and "UPLOAD_IMAGE_MAX_PIXELS" in page
    assert listing(datasets_root) == before and not ProbeDataset.objects.exists()


def test_an_image_at_the_limit_is_accepted(tiny_mixture_dir, datasets_root, settings):
    with Image.open(next((tiny_mixture_dir / "images").rglob("*.png"))) as im:
        settings.UPLOAD_IMAGE_MAX_PIXELS = im.size[0] * im.size[1]
    data = zip_with(tiny_mixture_dir, {})
    dataset = dataset_register(
        project=lab_project(), name="ok", kind="broden",
        source=DatasetSource(archive=io.BytesIO(data), archive_size=len(data)),
    )
    assert (datasets_root / dataset.path / "index.csv").is_file()


def test_the_api_refuses_a_bomb_with_a_400_and_keeps_nothing(requester, tiny_mixture_dir, datasets_root):
    api = APIClient()
    api.force_authenticate(requester)
    before = listing(datasets_root)
    upload = SimpleUploadedFile("d.zip", zip_with(tiny_mixture_dir,
                                                  {"tiny/images/bomb.png": png_claiming(60_000, 60_000)}))
    response = api.post(
        "/api/datasets/",
        {"project": lab_project().pk, "name": "d", "kind": "broden", "archive": upload},
        format="multipart",
    )
    assert response.status_code == 400 and "decompression bomb" in str(response.json())
    assert listing(datasets_root) == before


# --- dataset paths ------------------------------------------------------------------------------

@pytest.fixture
def outside(tmp_path, tiny_mixture_dir):
    """A valid dataset folder outside DATASETS_ROOT."""
    import shutil

    target = tmp_path / "elsewhere" / "data"
    shutil.copytree(tiny_mixture_dir, target)
    return target


def test_a_requester_cannot_register_a_folder_outside_datasets_root(client, requester, datasets_root, outside):
    client.login(username=requester.username, password=PASSWORD)
    for path in (str(outside), "../elsewhere/data", str(datasets_root / ".." / "elsewhere" / "data"), "/etc"):
        response = client.post(reverse("dissection:dataset_new"), {"name": "d", "kind": "mixture", "path": path})
        assert response.status_code == 200 and "outside the dataset folders" in response.content.decode(), path
    api = APIClient()
    api.force_authenticate(requester)
    response = api.post("/api/datasets/", {"project": lab_project().pk, "name": "d", "kind": "mixture",
                                                   "path": str(outside)}, format="json")
    assert response.status_code == 400 and "outside the dataset folders" in str(response.json())
    assert not ProbeDataset.objects.exists()


def test_a_link_under_datasets_root_to_a_folder_outside_is_refused(datasets_root, outside):
    (datasets_root / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DissectionError, match="outside the dataset folders"):
        dataset_register(project=lab_project(), name="d", kind="mixture", source=DatasetSource(path="link"))


def test_folders_under_datasets_root_and_the_allow_list_are_accepted(datasets_root, outside, tiny_mixture_dir,
                                                                     settings):
    import shutil

    shutil.copytree(tiny_mixture_dir, datasets_root / "inside")
    inside = dataset_register(project=lab_project(), name="in", kind="mixture", source=DatasetSource(path="inside"))
    assert inside.num_images > 0
    with pytest.raises(DissectionError, match="outside"):
        dataset_register(project=lab_project(), name="out", kind="mixture", source=DatasetSource(path=str(outside)))
    settings.DATASET_PATHS_ALLOWED = [outside.parent]
    allowed = dataset_register(project=lab_project(), name="out", kind="mixture",
                               source=DatasetSource(path=str(outside)))
    assert allowed.num_images > 0


@pytest.mark.parametrize("kind", list(ProbeDataset.Kind.values))
def test_every_kind_refuses_a_path_outside_before_telling_whether_it_exists(client, requester, datasets_root,
                                                                           outside, tmp_path, kind):
    """A requester probing the server's files: an existing and a missing file outside answer alike."""
    existing, missing = outside / "label.csv", tmp_path / "elsewhere" / "no-such-file.pt"
    assert existing.is_file() and not missing.exists()
    client.login(username=requester.username, password=PASSWORD)
    api = APIClient()
    api.force_authenticate(requester)
    for path in (str(existing), str(missing), "../elsewhere/data/label.csv", "/etc/passwd", "/etc/no-such-file"):
        with pytest.raises(DissectionError, match="outside the dataset folders"):
            dataset_register(project=lab_project(), name="probe", kind=kind, source=DatasetSource(path=path))
        page = client.post(reverse("dissection:dataset_new"), {"name": "probe", "kind": kind, "path": path})
        assert page.status_code == 200 and "outside the dataset folders" in page.content.decode(), (kind, path)
        assert "does not exist" not in page.content.decode()
        response = api.post(
            "/api/datasets/", {"project": lab_project().pk, "name": "probe", "kind": kind, "path": path}, format="json"
        )
        assert response.status_code == 400 and "outside the dataset folders" in str(response.json()), (kind, path)
    assert not ProbeDataset.objects.exists()


def test_a_segmenter_checkpoint_under_datasets_root_is_accepted(datasets_root):
    from tests.dissection.gan_helpers import write_tiny_checkpoints

    write_tiny_checkpoints(datasets_root)
    segmenter = dataset_register(project=lab_project(), name="seg", kind="segmenter",
                                 source=DatasetSource(path="segmenter.pt"))
    assert segmenter.kind == "segmenter"
    with pytest.raises(DissectionError, match="does not exist"):
        dataset_register(project=lab_project(), name="seg2", kind="segmenter", source=DatasetSource(path="missing.pt"))


def test_the_operators_command_may_name_any_folder(datasets_root, outside):
    from django.core.management import call_command

    call_command(
        "register_dataset", "ops", "--project", lab_project().name, "--kind", "mixture", "--path", str(outside)
    )
    assert ProbeDataset.objects.get(name="ops").path == str(outside)


def test_an_unreadable_allow_list_stops_the_process_at_start_up(tmp_path):
    from tests.dissection.test_settings import load_settings

    result = load_settings(SECRET_KEY="x" * 40, DATASET_PATHS_ALLOWED="data/rel", UNITCROWD_VAR_DIR=str(tmp_path))
    assert result.returncode != 0 and "DATASET_PATHS_ALLOWED" in result.stderr
