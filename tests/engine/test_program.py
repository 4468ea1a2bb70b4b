"""Exported programs (.pt2): the dissection of a program equals the dissection of the module it was
exported from, its layers are the module's own paths, and malformed programs are refused with the fix."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tasks.engine.__main__ import main
from tasks.engine.datasets import NETDISSECT_MEAN, NETDISSECT_STD, open_dataset
from tasks.engine.dissect import DissectOptions, dissect
from tasks.engine.errors import CheckpointError, LayerError
from tasks.engine.models import load_model
from tests.engine.factories import write_broden

LAYERS = ["stem", "stage.2"]


class Block(nn.Module):
    def __init__(self, inputs: int, units: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(inputs, units, 3, padding=1)
        self.bn = nn.BatchNorm2d(units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x)))


class ResearchNet(nn.Module):
    """A user's own network: nested blocks, a functional residual, a pooled head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = Block(3, 4)
        self.stage = nn.Sequential(Block(4, 6), nn.MaxPool2d(2), Block(6, 5))
        self.head = nn.Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.stem(x)
        return self.head(self.stage(y + x.mean(1, keepdim=True)).mean((2, 3)))


def _net() -> nn.Module:
    torch.manual_seed(4)
    net = ResearchNet()
    for m in net.modules():  # running statistics that are not the identity
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def _export(model: nn.Module, path, *, dynamic: bool = True, example=None) -> None:
    example = torch.randn(2, 3, 16, 16) if example is None else example
    shapes = {"x": {0: torch.export.Dim("batch")}} if dynamic else None
    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=shapes), path)


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    path = tmp_path_factory.mktemp("program") / "net.pt2"
    _export(_net(), path)
    return path


@pytest.fixture(scope="module")
def broden(tmp_path_factory):
    return write_broden(tmp_path_factory.mktemp("data") / "broden", n_images=11, size=16, seg_size=8, seed=9)


def test_the_dissection_of_a_program_equals_the_dissection_of_its_module(program, broden, tmp_path):
    dataset = open_dataset(f"broden:{broden.root}")
    options = DissectOptions(layers=LAYERS, top_k=3, quantile=0.02, batch_size=4, progress_bar=False, render=False)
    dissect(_net(), dataset, options, tmp_path / "module")

    code = main(["dissect", "--dataset", f"broden:{broden.root}", "--model", "program", "--checkpoint", str(program),
                 "--layers", ",".join(LAYERS), "--out", str(tmp_path / "program"), "--top-k", "3", "--quantile", "0.02",
                 "--batch-size", "4", "--workers", "0", "--no-render", "--device", "cpu", "--no-channels-last",
                 "--mean", ",".join(map(str, NETDISSECT_MEAN)), "--std", ",".join(map(str, NETDISSECT_STD))])
    assert code == 0
    for layer in LAYERS:
        mod, prog = tmp_path / "module" / layer, tmp_path / "program" / layer
        assert (prog / "tally.csv").read_bytes() == (mod / "tally.csv").read_bytes()
        assert (prog / "topk.csv").read_bytes() == (mod / "topk.csv").read_bytes()
        assert np.array_equal(np.load(prog / "thresholds.npy"), np.load(mod / "thresholds.npy"))


def test_a_programs_layers_are_its_modules_paths_and_an_unknown_one_names_close_ones(program):
    model = load_model("program", program)
    names = {name for name, _ in model.named_modules()}
    assert {"stem", "stem.conv", "stage.0", "stage.2", "head"} <= names
    from tasks.engine.capture import resolve_layers

    with pytest.raises(LayerError, match="layer 'stage.3' is not in the model \\(close names: stage.2"):
        resolve_layers(model, ["stage.3"])


def test_the_layer_table_of_a_program_reads_at_its_exported_size(program, capsys):
    assert main(["layers", "--model", "program", "--checkpoint", str(program), "--readable"]) == 0
    out = capsys.readouterr().out
    assert "program at 16x16 px" in out
    assert "stage.2 " in out and "map of 5 units at 8x8" in out


def test_a_program_with_a_fixed_batch_is_refused_with_how_to_export_it(tmp_path, capsys):
    _export(_net(), tmp_path / "fixed.pt2", dynamic=False)
    with pytest.raises(CheckpointError, match="fixed batch size of 2; export it with a dynamic batch dimension"):
        load_model("program", tmp_path / "fixed.pt2")
    code = main(["layers", "--model", "program", "--checkpoint", str(tmp_path / "fixed.pt2")])
    assert code == 2 and "dynamic_shapes" in capsys.readouterr().err


class TwoInputs(nn.Module):
    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return x + y


class Vectors(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(10, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


@pytest.mark.filterwarnings("ignore::FutureWarning")  # torch.jit, which the test shows refused
def test_a_file_that_is_not_a_program_or_a_program_not_of_images_is_refused(tmp_path):
    torch.save(_net().state_dict(), tmp_path / "weights.pt2")
    with pytest.raises(
        CheckpointError, match="is not a torch.export program .* A state_dict is registered with its architecture"
    ):
        load_model("program", tmp_path / "weights.pt2")
    (tmp_path / "text.pt2").write_text("hello")
    with pytest.raises(CheckpointError, match="is not a torch.export program"):
        load_model("program", tmp_path / "text.pt2")
    two = torch.export.export(TwoInputs(), (torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)))
    torch.export.save(two, tmp_path / "two.pt2")
    with pytest.raises(CheckpointError, match="takes 2 inputs .* one image batch"):
        load_model("program", tmp_path / "two.pt2")
    vec = torch.export.export(Vectors(), (torch.randn(2, 10),), dynamic_shapes={"x": {0: torch.export.Dim("batch")}})
    torch.export.save(vec, tmp_path / "vec.pt2")
    with pytest.raises(CheckpointError, match="shape \\[.*10\\], not an image batch"):
        load_model("program", tmp_path / "vec.pt2")
    torch.jit.save(torch.jit.trace(_net(), torch.randn(1, 3, 8, 8)), tmp_path / "scripted.pt2")
    with pytest.raises(CheckpointError, match="is a TorchScript archive: its layers cannot be hooked"):
        load_model("program", tmp_path / "scripted.pt2")
    with pytest.raises(CheckpointError, match="needs the exported program"):
        load_model("program", None)
