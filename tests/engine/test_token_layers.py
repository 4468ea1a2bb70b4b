"""Transformer layers read as maps: ViT tokens and Swin's channels-last stages, against slow references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torchvision.models import VisionTransformer

from tasks.engine.capture import LayerCapture, read_map
from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, dissect
from tasks.engine.errors import LayerError
from tasks.engine.iou import read_tally
from tests.engine.factories import write_broden
from tests.engine.test_iou import _reference

BLOCK = "encoder.layers.encoder_layer_1"


def _tiny_vit() -> nn.Module:
    torch.manual_seed(0)
    # 16 px images in 4 px patches: a 4 x 4 grid of tokens after the class token.
    return VisionTransformer(image_size=16, patch_size=4, num_layers=2, num_heads=2, hidden_dim=8, mlp_dim=16,
                             num_classes=3).eval()


def _reference_maps(model: nn.Module, dataset) -> torch.Tensor:
    """One image at a time; token 1 + y * 4 + x holds grid cell (y, x), token 0 is the class token."""
    seen = {}
    handle = dict(model.named_modules())[BLOCK].register_forward_hook(lambda m, i, o: seen.update(out=o))
    maps = torch.zeros(len(dataset), 8, 4, 4)
    with torch.no_grad():
        for n in range(len(dataset)):
            model(dataset[n].image[None])
            tokens = seen["out"][0]
            assert tokens.shape == (17, 8)
            for y in range(4):
                for x in range(4):
                    for c in range(8):
                        maps[n, c, y, x] = tokens[1 + y * 4 + x, c]
    handle.remove()
    return maps


def test_a_vit_blocks_iou_equals_a_per_image_reference(tmp_path):
    fake = write_broden(tmp_path / "broden", n_images=9, size=16, seg_size=8, categories=("object", "scene"),
                        image_level=("scene",), seed=11)
    dataset = open_dataset(f"broden:{fake.root}")
    model = _tiny_vit()
    options = DissectOptions(layers=[BLOCK], top_k=3, quantile=0.05, batch_size=4, render=False, progress_bar=False)
    result = dissect(model, dataset, options, tmp_path / "out")
    layer = result.layers[BLOCK]

    acts = _reference_maps(model, dataset)
    expected_t = torch.quantile(acts.transpose(0, 1).reshape(8, -1), 0.95, dim=1)
    np.testing.assert_allclose(layer.thresholds, expected_t.numpy(), rtol=1e-5, atol=1e-6)
    top = acts.flatten(2).amax(2).t().topk(3, dim=1)
    assert np.array_equal(layer.topk_indices, top.indices.numpy())

    rows = fake.kept
    cats = {c: k for k, c in enumerate(fake.categories)}
    labcat = {n: cats[c] for n, (_, c) in fake.labels.items()}
    G, inter, A = _reference(
        acts,
        torch.from_numpy(layer.thresholds),
        [np.stack(r.pixel_layers) if r.pixel_layers else np.zeros((0, 8, 8), int) for r in rows],
        [r.image_labels for r in rows],
        labcat,
        8,
        "lite",
    )
    numbers = [int(c.number) for c in dataset.concepts]
    expected_iou = [
        [inter[(u, k)] / (A[u, labcat[k]] + G[k] - inter[(u, k)] + 1e-10) for k in numbers] for u in range(8)
    ]
    np.testing.assert_allclose(layer.iou, expected_iou, rtol=1e-9)
    assert len(read_tally(tmp_path / "out" / BLOCK / "tally.csv")) == 8
    assert layer.summary["reading"] == (
        "tokens [17, 8] read as a 4x4 map of 8 units, first 1 token(s) (class/register) dropped"
    )


class _ChannelsLastStage(nn.Module):
    """A Swin-like stage: patches to [B, H, W, C], then a LayerNorm over C."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 6, 4, stride=4)
        self.norm = nn.LayerNorm(6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.embed(x).permute(0, 2, 3, 1))


def test_a_channels_last_stage_is_read_as_units_over_its_grid():
    torch.manual_seed(1)
    model = nn.Sequential(_ChannelsLastStage()).eval()
    x = torch.randn(2, 3, 12, 20)
    with torch.no_grad():
        hwc = model(x)
        with LayerCapture(model, ["0"]) as capture:
            maps = capture.run(x)["0"]
    assert maps.shape == (2, 6, 3, 5)
    for y in range(3):
        for x_ in range(5):
            assert torch.equal(maps[:, :, y, x_], hwc[:, y, x_, :])
    assert capture.readings["0"] == "channels-last [3, 5, 6] read as a 3x5 map of 6 units"


def test_register_tokens_are_dropped_and_a_grid_that_is_not_square_is_refused_with_the_fix():
    tokens = torch.arange(2 * 21 * 3, dtype=torch.float32).reshape(2, 21, 3)  # class + 4 registers + 4 x 4 patches
    maps, how = read_map("blk", tokens)
    assert maps.shape == (2, 3, 4, 4) and torch.equal(maps[1, 2, 3, 1], tokens[1, 5 + 3 * 4 + 1, 2])
    assert "first 5 token(s)" in how
    with pytest.raises(LayerError, match="layer 'blk' outputs 35 tokens of 3 features, which are not a square grid"
                       ".*state the grid its patch tokens form \\(--grid HxW"):
        read_map("blk", torch.zeros(1, 35, 3))  # 35 - k is no square for k <= 8
    with pytest.raises(LayerError, match="choose such a layer"):
        read_map("blk", torch.zeros(1, 2, 3, 4, 5))


class _WideTokens(nn.Module):
    """A custom token network: 24 px images cut into 2 x 3 px patches (a 12 x 8 grid), a class token in
    front, and one token-wise block: 97 tokens, which are no square after dropping up to 8."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(3, 8, kernel_size=(2, 3), stride=(2, 3))
        self.cls = nn.Parameter(torch.randn(1, 1, 8))
        self.block = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 8), nn.GELU())
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # [B, 96, 8], row by row
        tokens = self.block(torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1))
        return self.head(tokens[:, 0])


def test_tokens_that_are_no_square_grid_need_the_grid_stated_and_then_equal_a_per_image_reference(tmp_path):
    fake = write_broden(tmp_path / "broden", n_images=9, size=24, seg_size=12, categories=("object", "scene"),
                        image_level=("scene",), seed=12)
    dataset = open_dataset(f"broden:{fake.root}")
    torch.manual_seed(3)
    model = _WideTokens().eval()

    def options(grid):
        return DissectOptions(layers=["block"], top_k=3, quantile=0.05, batch_size=4, render=False,
                              progress_bar=False, grid=grid)

    with pytest.raises(LayerError, match="layer 'block' outputs 97 tokens of 8 features, which are not a square grid"):
        dissect(model, dataset, options(None), tmp_path / "refused")
    assert not (tmp_path / "refused" / "block" / "tally.csv").exists()
    with pytest.raises(LayerError, match="do not fit the stated 10x10 grid"):
        dissect(model, dataset, options((10, 10)), tmp_path / "refused")

    result = dissect(model, dataset, options((12, 8)), tmp_path / "out")
    layer = result.layers["block"]
    assert layer.summary["reading"] == (
        "tokens [97, 8] read as a 12x8 map (stated grid) of 8 units, first 1 token(s) (class/register) dropped"
    )

    # Reference: one image at a time, token 1 + y * 8 + x is patch (y, x), read from the block's own output.
    seen = {}
    handle = model.block.register_forward_hook(lambda m, i, o: seen.update(out=o))
    acts = torch.zeros(len(dataset), 8, 12, 8)
    with torch.no_grad():
        for n in range(len(dataset)):
            model(dataset[n].image[None])
            for y in range(12):
                for x in range(8):
                    acts[n, :, y, x] = seen["out"][0, 1 + y * 8 + x]
    handle.remove()
    expected_t = torch.quantile(acts.transpose(0, 1).reshape(8, -1), 0.95, dim=1)
    np.testing.assert_allclose(layer.thresholds, expected_t.numpy(), rtol=1e-5, atol=1e-6)
    cats = {c: k for k, c in enumerate(fake.categories)}
    labcat = {n: cats[c] for n, (_, c) in fake.labels.items()}
    G, inter, A = _reference(
        acts, torch.from_numpy(layer.thresholds),
        [np.stack(r.pixel_layers) if r.pixel_layers else np.zeros((0, 12, 12), int) for r in fake.kept],
        [r.image_labels for r in fake.kept], labcat, 8, "lite",
    )
    numbers = [int(c.number) for c in dataset.concepts]
    expected_iou = [
        [inter[(u, k)] / (A[u, labcat[k]] + G[k] - inter[(u, k)] + 1e-10) for k in numbers] for u in range(8)
    ]
    np.testing.assert_allclose(layer.iou, expected_iou, rtol=1e-9)
    assert np.asarray(layer.iou).max() > 0  # the comparison is not between two empty counts


def test_the_layers_command_reads_token_layers_with_a_stated_grid(capsys, tmp_path):
    import json

    from tasks.engine.__main__ import main

    program = tmp_path / "wide.pt2"
    torch.manual_seed(3)
    model = _WideTokens().eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    torch.export.save(torch.export.export(model, (torch.zeros(2, 3, 24, 24),), dynamic_shapes=({0: batch},)), program)
    args = ["layers", "--model", "program", "--checkpoint", str(program), "--image-size", "24", "--json"]
    assert main(args) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["layers"]}
    assert rows["block"]["units"] is None and "not a square grid" in rows["block"]["reading"]
    assert main([*args, "--grid", "12x8"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)["layers"]}
    assert rows["block"]["units"] == 8 and rows["block"]["map_size"] == [12, 8]
