"""Every torchvision classification architecture builds, probes its layers and dissects one layer.

Each network is built with seeded random weights, its layer table comes from a shape probe,
and one late layer that reads as a map is dissected on 8 images at a small size.
"""

from __future__ import annotations

import pytest
import torch

from tasks.engine.catalogue import input_spec, torchvision_names
from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, dissect
from tasks.engine.errors import CheckpointError, EngineError
from tasks.engine.iou import read_tally
from tasks.engine.layers import layer_table
from tasks.engine.models import load_model
from tests.engine.factories import write_broden

# One architecture of each family runs in `make test-fast`; the rest (4 minutes for the smaller ones
# on the 2-core CI machine, several more for the largest) run in `make test`.
FAST = {
    "alexnet", "resnet18", "convnext_tiny", "densenet121", "efficientnet_b0", "googlenet", "mnasnet0_5",
    "mobilenet_v3_small", "regnet_x_400mf", "shufflenet_v2_x0_5", "squeezenet1_1", "swin_t", "vgg11", "vit_b_32",
}


def _size(name: str) -> int:
    """A small input each network accepts: patch sizes divide it, and Inception's stem fits."""
    if name == "vit_h_14":
        return 56
    if name == "maxvit_t":
        return 224  # its attention partitions (7 x 7 after a 32x reduction) fix the size
    if name == "inception_v3":
        return 80
    return 64


def _late_layer(rows) -> str:
    """The last layer in forward order whose output is a map larger than 1 x 1."""
    spatial = [r for r in rows if r.units is not None and r.map_size and r.map_size[0] * r.map_size[1] > 1]
    return spatial[-1].name


@pytest.fixture(scope="module")
def broden_64(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalogue") / "broden"
    return write_broden(root, n_images=9, size=64, seg_size=32, empty_rows=1, seed=5)


@pytest.mark.parametrize(
    "name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in torchvision_names()]
)
def test_every_torchvision_classifier_builds_probes_and_dissects_one_layer(name, broden_64, tmp_path):
    torch.set_num_threads(2)
    size = _size(name)
    spec = input_spec(name)
    assert spec.size >= 64 and len(spec.mean) == 3 and min(spec.std) > 0
    model = load_model(name, None, image_size=size if spec.fixed else None)
    rows = layer_table(model, size)
    layer = _late_layer(rows)
    row = next(r for r in rows if r.name == layer)

    dataset = open_dataset(f"broden:{broden_64.root}", mean=list(spec.mean), std=list(spec.std), image_size=size)
    assert len(dataset) == 8
    options = DissectOptions(layers=[layer], batch_size=8, top_k=3, render=False, progress_bar=False)
    result = dissect(model, dataset, options, tmp_path / "out")

    assert result.layers[layer].num_units == row.units
    tally = read_tally(tmp_path / "out" / layer / "tally.csv")
    assert len(tally) == row.units
    assert result.layers[layer].summary["reading"] == row.reading


def test_the_catalogue_is_torchvisions_classification_list():
    import torchvision.models as tvm

    assert set(torchvision_names()) == set(tvm.list_models(module=tvm))
    assert {"convnext_tiny", "efficientnet_b0", "vit_b_16", "swin_t", "regnet_y_400mf"} <= set(torchvision_names())


def test_input_specs_come_from_the_weights_and_netdissect_architectures_keep_netdissects_normalisation():
    assert input_spec("inception_v3").size == 299
    assert input_spec("convnext_tiny").mean == (0.485, 0.456, 0.406)
    assert input_spec("vit_b_16").fixed and not input_spec("convnext_tiny").fixed
    assert input_spec("resnet18").mean == pytest.approx((0.488981, 0.465450, 0.429564))


def test_a_checkpoint_is_checked_against_any_catalogue_architecture(tmp_path):
    path = tmp_path / "squeeze.pt"
    torch.save(load_model("squeezenet1_1", None, num_classes=7).state_dict(), path)
    assert load_model("squeezenet1_1", path).classifier[1].out_channels == 7  # classes read from the checkpoint
    with pytest.raises(CheckpointError, match="does not fit architecture 'squeezenet1_0': missing keys: features"):
        load_model("squeezenet1_0", path)
    with pytest.raises(CheckpointError, match="unexpected keys"):
        load_model("mobilenet_v3_small", path)


def test_an_inception_checkpoint_with_its_auxiliary_head_loads():
    model = load_model("inception_v3", None, num_classes=5)
    state = model.state_dict() | {"AuxLogits.fc.weight": torch.zeros(5, 768), "AuxLogits.fc.bias": torch.zeros(5)}
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        torch.save(state, Path(tmp) / "inc.pt")
        assert load_model("inception_v3", Path(tmp) / "inc.pt").fc.out_features == 5


def test_an_unknown_architecture_names_close_ones():
    with pytest.raises(EngineError, match="Unknown architecture 'convnext_tiney' \\(close names: convnext_tiny"):
        load_model("convnext_tiney", None)
