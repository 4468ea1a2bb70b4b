"""Any catalogue architecture is registered by name on the command line, the page and the API,
with its weights' input filled in; bad names and foreign checkpoints are refused with nothing kept."""
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from tasks.engine.models import load_model
from tests.factories import lab_project
from units.dissection.models import Network
from units.dissection.services import DissectionError, NetworkInput, network_register

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def squeezenet_checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "squeeze.pth"
    torch.save(load_model("squeezenet1_1", None, num_classes=6).state_dict(), path)
    return path


def test_a_catalogue_network_takes_its_weights_normalisation_and_its_checkpoints_classes(
    squeezenet_checkpoint, media_root
):
    network = network_register(
        project=lab_project(), name="sq", architecture="squeezenet1_1", checkpoint=squeezenet_checkpoint
    )
    assert network.mean == [0.485, 0.456, 0.406] and network.std == [0.229, 0.224, 0.225]
    assert network.input_size is None  # any size: the dataset's
    assert Path(network.checkpoint.path).is_file()


def test_a_vit_is_registered_with_its_fixed_input_size_and_the_user_may_override_normalisation(media_root):
    vit = network_register(project=lab_project(), name="vit", architecture="vit_b_16")
    assert vit.input_size == 224 and vit.architecture_label == "vit_b_16"
    mine = network_register(
        project=lab_project(), name="mine", architecture="convnext_tiny",
        inputs=NetworkInput(mean=[0.5] * 3, std=[0.25] * 3),
    )
    assert mine.mean == [0.5] * 3 and mine.std == [0.25] * 3


def test_the_netdissect_architectures_keep_netdissect_lites_normalisation(media_root):
    assert network_register(project=lab_project(), name="r18", architecture="resnet18").mean == []


def test_a_checkpoint_of_another_architecture_is_refused_with_its_keys_named_and_nothing_kept(
    squeezenet_checkpoint, media_root
):
    with pytest.raises(DissectionError, match="does not fit architecture 'squeezenet1_0': missing keys: features"):
        network_register(
            project=lab_project(), name="wrong", architecture="squeezenet1_0", checkpoint=squeezenet_checkpoint
        )
    assert not Network.objects.exists()
    assert not any((media_root / "checkpoints").glob("*"))


def test_the_command_registers_any_catalogue_name_and_names_close_ones_for_a_typo(
    squeezenet_checkpoint, media_root, capsys
):
    call_command(
        "register_network",
        "sq",
        "--project",
        lab_project().name,
        "--arch",
        "squeezenet1_1",
        "--checkpoint",
        str(squeezenet_checkpoint),
    )
    assert Network.objects.get(name="sq").architecture == "squeezenet1_1"
    with pytest.raises(CommandError, match="Unknown architecture 'convnext_tiney' \\(close names: convnext_tiny"):
        call_command("register_network", "typo", "--project", lab_project().name, "--arch", "convnext_tiney")
    assert not Network.objects.filter(name="typo").exists()


def test_the_api_registers_a_catalogue_name_and_refuses_an_unknown_one(requester, media_root):
    api = APIClient()
    api.force_authenticate(requester)
    created = api.post(
        "/api/networks/", {"project": lab_project().pk, "name": "eff", "architecture": "efficientnet_b0"}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["mean"] == [0.485, 0.456, 0.406] and created.json()["input_size"] is None
    refused = api.post(
        "/api/networks/", {"project": lab_project().pk, "name": "x", "architecture": "efficientnet_b99"}, format="json"
    )
    assert refused.status_code == 400 and "Unknown architecture" in refused.content.decode()
    assert not Network.objects.filter(name="x").exists()


def test_the_page_suggests_the_catalogue_and_refuses_a_foreign_checkpoint(
    client, requester, squeezenet_checkpoint, media_root
):
    client.force_login(requester)
    page = client.get("/networks/new/").content.decode()
    assert '<datalist id="architecture-options">' in page and '<option value="vit_b_16">' in page
    upload = SimpleUploadedFile("sq.pth", squeezenet_checkpoint.read_bytes())
    response = client.post("/networks/new/", {"name": "n1", "architecture": "mobilenet_v3_small", "checkpoint": upload})
    assert response.status_code == 200
    assert "does not fit architecture" in response.content.decode()
    assert not Network.objects.exists()


def test_a_layer_a_catalogue_network_does_not_have_is_named_before_any_job(media_root):
    from units.dissection.layer_picker import layer_name_problem

    assert layer_name_problem("convnext_tiny", ["features.5"]) is None
    assert "close names: features.5" in layer_name_problem("convnext_tiny", ["features.5x"])
    assert layer_name_problem("vit_b_16", ["encoder.layers.encoder_layer_11"], input_size=224) is None


def _export_program(path: Path, *, dynamic: bool) -> None:
    from tests.engine.test_program import _export, _net

    _export(_net(), path, dynamic=dynamic)


def test_an_exported_program_is_registered_like_a_checkpoint_and_a_fixed_batch_one_is_refused(tmp_path, media_root):
    _export_program(tmp_path / "net.pt2", dynamic=True)
    call_command(
        "register_network",
        "mine",
        "--project",
        lab_project().name,
        "--arch",
        "program",
        "--checkpoint",
        str(tmp_path / "net.pt2"),
    )
    network = Network.objects.get(name="mine")
    assert network.checkpoint.name.endswith(".pt2") and network.input_size == 16  # exported for 16 px images
    assert network.architecture_label == "Exported program (torch.export .pt2)"

    _export_program(tmp_path / "fixed.pt2", dynamic=False)
    with pytest.raises(CommandError, match="fixed batch size of 2; export it with a dynamic batch dimension"):
        call_command(
            "register_network",
            "fixed",
            "--project",
            lab_project().name,
            "--arch",
            "program",
            "--checkpoint",
            str(tmp_path / "fixed.pt2"),
        )
    with pytest.raises(CommandError, match="registered with its .pt2 file"):
        call_command("register_network", "bare", "--project", lab_project().name, "--arch", "program")
    assert list(Network.objects.values_list("name", flat=True)) == ["mine"]


def test_the_api_takes_an_uploaded_program_and_names_the_upload_in_its_errors(tmp_path, requester, media_root):
    from tasks.engine.layers import layer_table

    _export_program(tmp_path / "net.pt2", dynamic=True)
    _export_program(tmp_path / "fixed.pt2", dynamic=False)
    api = APIClient()
    api.force_authenticate(requester)
    upload = SimpleUploadedFile("mine.pt2", (tmp_path / "net.pt2").read_bytes())
    created = api.post(
        "/api/networks/",
        {"project": lab_project().pk, "name": "p", "architecture": "program", "checkpoint": upload},
        format="multipart",
    )
    assert created.status_code == 201, created.content
    model = load_model("program", Network.objects.get(name="p").checkpoint.path)
    assert any(r.name == "stage.2" and r.units == 5 for r in layer_table(model, 16))
    upload = SimpleUploadedFile("fixed.pt2", (tmp_path / "fixed.pt2").read_bytes())
    refused = api.post(
        "/api/networks/",
        {"project": lab_project().pk, "name": "f", "architecture": "program", "checkpoint": upload},
        format="multipart",
    )
    assert refused.status_code == 400 and "uploaded file 'fixed.pt2'" in refused.content.decode().replace(
        "\\u0027", "'"
    )
    assert not Network.objects.filter(name="f").exists()


def test_a_timm_architecture_is_registered_by_name_with_its_configs_input(media_root):
    pytest.importorskip("timm")
    vit = network_register(project=lab_project(), name="tvit", architecture="timm:vit_tiny_patch16_224")
    assert vit.mean == [0.5, 0.5, 0.5] and vit.input_size == 224
    with pytest.raises(DissectionError, match="timm has no architecture 'vit_tiny_patch16_999'"):
        network_register(project=lab_project(), name="bad", architecture="timm:vit_tiny_patch16_999")


def test_a_token_layer_that_is_no_square_grid_needs_the_grid_stated_on_the_job(tmp_path, requester, media_root,
                                                                                tiny_mixture_dir,
                                                                                django_capture_on_commit_callbacks):
    from tests.engine.test_token_layers import _WideTokens
    from units.dissection.models import DissectionJob, Layer
    from units.dissection.services import DatasetSource, dataset_register

    torch.manual_seed(3)
    program = tmp_path / "wide.pt2"
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(_WideTokens().eval(), (torch.zeros(2, 3, 24, 24),),
                                          dynamic_shapes=({0: batch},)), program)
    call_command("register_network", "wide", "--project", lab_project().name, "--arch", "program",
                 "--checkpoint", str(program))
    network = Network.objects.get(name="wide")
    dataset = dataset_register(project=lab_project(), name="tiny", kind="mixture",
                               source=DatasetSource(path=str(tiny_mixture_dir)), any_path=True)
    api = APIClient()
    api.force_authenticate(requester)
    body = {"network": network.pk, "dataset": dataset.pk, "layers": ["block"], "top_k": 2, "batch_size": 8}

    refused = api.post("/api/jobs/", body, format="json")
    assert refused.status_code == 400 and "97 tokens of 8 features, which are not a square grid" in str(refused.json())
    wrong = api.post("/api/jobs/", {**body, "token_grid": "12by8"}, format="json")
    assert wrong.status_code == 400 and "HEIGHTxWIDTH" in str(wrong.json())
    assert not DissectionJob.objects.exists()

    table = api.get(f"/api/networks/{network.pk}/layers/", {"token_grid": "12x8"}).json()
    assert {r["name"]: r for r in table["layers"]}["block"]["map_size"] == [12, 8]
    with django_capture_on_commit_callbacks(execute=True):
        created = api.post("/api/jobs/", {**body, "token_grid": "12x8", "start": True}, format="json")
    assert created.status_code == 201, created.content
    job = DissectionJob.objects.get(pk=created.json()["id"])
    assert job.status == "succeeded", job.error_message
    assert job.token_grid == "12x8" and created.json()["token_grid"] == "12x8"
    reading = Layer.objects.get(job=job, name="block").summary["reading"]
    assert reading == ("tokens [97, 8] read as a 12x8 map (stated grid) of 8 units, "
                       "first 1 token(s) (class/register) dropped")
