"""Finding layers by module path and capturing several of them in one forward pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tasks.engine.capture import LayerCapture, resolve_layers
from tasks.engine.errors import LayerError
from tasks.engine.models import load_model


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 2),
    )


def test_layers_resolve_by_any_module_path_of_a_resnet():
    model = load_model("resnet18", None, num_classes=3)
    found = resolve_layers(model, ["layer4", "layer4.1.conv2", "layer3.0"])
    assert found["layer4"] is model.layer4
    assert found["layer4.1.conv2"] is model.layer4[1].conv2
    assert found["layer3.0"] is model.layer3[0]


def test_an_unknown_layer_is_refused_with_close_valid_names():
    model = load_model("resnet18", None, num_classes=3)
    with pytest.raises(LayerError) as info:
        resolve_layers(model, ["layer5"])
    message = str(info.value)
    assert "'layer5'" in message and "layer4" in message and "close names" in message


def test_one_pass_captures_several_layers_equal_to_running_the_prefixes():
    model = _tiny_net().eval()
    x = torch.randn(2, 3, 8, 8)
    with LayerCapture(model, ["1", "3"]) as capture, torch.no_grad():
        out = capture.run(x)
    with torch.no_grad():
        assert torch.equal(out["1"], model[:2](x))
        assert torch.equal(out["3"], model[:4](x))
    assert out["3"].shape == (2, 6, 4, 4)


def test_hooks_are_removed_when_the_capture_ends():
    model = _tiny_net()
    with LayerCapture(model, ["1"]):
        assert len(model[1]._forward_hooks) == 1
    assert len(model[1]._forward_hooks) == 0


@pytest.mark.parametrize("layer, units", [("4", 6), ("5", 6), ("6", 2)])
def test_pooled_vectors_are_refused_with_the_fix(layer, units):
    # The global pool's [B, 6, 1, 1], the flatten's [B, 6] and the linear layer's [B, 2] have no
    # height or width: nothing to compare with a segmentation, so no map is made up for them.
    model = _tiny_net().eval()
    with LayerCapture(model, [layer], stop_early=False) as capture, torch.no_grad(), \
            pytest.raises(LayerError) as info:
        capture.run(torch.randn(2, 3, 8, 8))
    message = str(info.value)
    assert f"layer '{layer}' outputs a pooled vector of {units} units" in message
    assert "choose an earlier layer with a spatial map" in message


def test_a_map_that_is_one_pixel_because_the_image_is_small_is_still_a_map():
    # Only a global pool's 1 x 1 is a vector; a convolution's map may shrink to 1 x 1 on a small image.
    model = _tiny_net().eval()
    with LayerCapture(model, ["2"]) as capture, torch.no_grad():
        assert capture.run(torch.randn(2, 3, 2, 2))["2"].shape == (2, 6, 1, 1)


