"""The layer table and the operation count behind the picker's time estimate."""

from __future__ import annotations

import json

from torch import nn

from tasks.engine.__main__ import main
from tasks.engine.layers import estimated_seconds, forward_flops, layer_table


def _net() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2)
    )


def test_the_table_lists_every_module_in_forward_order_with_its_reading():
    rows = layer_table(_net(), 8)
    assert [r.name for r in rows] == ["0", "1", "2", "3", "4"]
    assert rows[0].shape == [4, 8, 8] and rows[0].units == 4 and rows[0].map_size == [8, 8]
    for pooled in rows[2:]:  # the global pool, the flatten and the linear layer: vectors, shown as not dissectable
        assert pooled.units is None and pooled.map_size is None
        assert pooled.reading.startswith(f"not readable: layer '{pooled.name}' outputs a pooled vector")
        assert "choose an earlier layer with a spatial map" in pooled.reading
    assert rows[3].shape == [4] and rows[2].shape == [4, 1, 1]


def test_the_operation_count_is_the_convolution_and_linear_multiply_adds():
    # conv: 2 * 3*3*3 * 4 outputs * 8*8 positions; linear: 2 * 4 * 2 (FLOPs count a multiply-add as two)
    assert forward_flops(_net(), 8) == 2 * 27 * 4 * 64 + 2 * 4 * 2
    assert estimated_seconds(4e10, 100, 2, "cpu") == 200.0
    assert estimated_seconds(None, 100, 2) is None


def test_the_layers_command_prints_json_for_a_catalogue_network(capsys):
    assert main(["layers", "--model", "resnet18", "--json", "--image-size", "64"]) == 0
    table = json.loads(capsys.readouterr().out)
    rows = {r["name"]: r for r in table["layers"]}
    assert table["image_size"] == 64 and rows["layer4"]["units"] == 512 and rows["layer4"]["map_size"] == [2, 2]
    assert rows["avgpool"]["units"] is None and "pooled vector of 512 units" in rows["avgpool"]["reading"]
    assert rows["fc"]["units"] is None
