"""Ablation on hand-made networks where zeroing a unit has a known effect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tasks.engine.ablation import AblationBatching, ablation_effect
from tasks.engine.datasets import Batch
from tasks.engine.errors import LayerError


class ArgmaxNet(nn.Module):
    """Class = the channel with the largest mean; `hidden` passes the image through.

    Images are positive, so zeroing channel k only changes the answer for images whose
    largest channel is k: those become wrong, every other image stays right.
    """

    def __init__(self, residual: bool = False) -> None:
        super().__init__()
        self.hidden = nn.Sequential(nn.Conv2d(3, 3, 1, bias=False), nn.ReLU())
        with torch.no_grad():
            self.hidden[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.hidden(x)
        if self.residual:  # mixes the hooked output with the input, as a ResNet block does
            h = h + x
        return h.mean(dim=(2, 3))


def _images(targets: list[int]) -> torch.Tensor:
    x = torch.rand(len(targets), 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.1 + 0.1
    for i, t in enumerate(targets):
        x[i, t] += 1.0
    return x


TARGETS = [0, 0, 0, 1, 1, 2, 0, 1]  # class 0: 4 images, class 1: 3, class 2: 1


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("units_per_pass", [1, 2, 3])
def test_zeroing_a_unit_loses_exactly_the_images_of_its_class(residual: bool, units_per_pass: int) -> None:
    x = _images(TARGETS)
    result = ablation_effect(ArgmaxNet(residual), "hidden", x, targets=TARGETS, device="cpu",
                             batching=AblationBatching(batch_size=3, units_per_pass=units_per_pass))
    assert result["baseline_acc"] == 1.0
    if residual:  # the residual input keeps the class channel largest: nothing is lost
        expected = np.zeros(3)
        expected_class = np.zeros((3, 3))
    else:
        expected = np.array([4, 3, 1]) / 8
        expected_class = np.eye(3)
    np.testing.assert_allclose(result["per_unit_drop"], expected)
    np.testing.assert_allclose(result["per_unit_acc"], 1.0 - expected)
    np.testing.assert_allclose(result["per_unit_class_drop"], expected_class)
    assert result["class_counts"].tolist() == [4, 3, 1]


def test_a_wrong_baseline_and_a_class_without_images_are_reported_as_such() -> None:
    means = torch.tensor([[0.9, 0.1, 0.2], [0.1, 0.8, 0.3], [0.5, 0.7, 0.1]])
    x = means[:, :, None, None].expand(3, 3, 2, 2).clone()
    targets = [0, 1, 0]  # the last image is predicted 1 but labelled 0
    result = ablation_effect(ArgmaxNet(), "hidden", x, targets=targets, num_classes=4, device="cpu")
    assert result["baseline_acc"] == pytest.approx(2 / 3)
    np.testing.assert_allclose(result["per_class_baseline"][:2], [0.5, 1.0])
    assert np.isnan(result["per_class_baseline"][2:]).all()
    # zeroing unit 1 loses image 1 (now class 2) and mends image 2 (now class 0)
    assert result["per_unit_acc"][1] == pytest.approx(2 / 3)
    np.testing.assert_allclose(result["per_unit_class_drop"][1, :2], [0.5 - 1.0, 1.0 - 0.0])
    # zeroing unit 0 loses image 0 (now class 2) and changes nothing else
    assert result["per_unit_drop"][0] == pytest.approx(1 / 3)


def test_it_reads_batches_from_a_probe_loader_with_their_own_targets() -> None:
    x = _images(TARGETS)
    batches = [
        Batch(torch.arange(s, s + 4), x[s : s + 4], torch.zeros(4, 0, 1, 1, dtype=torch.long),
              torch.zeros(4, 0, dtype=torch.long), torch.tensor(TARGETS[s : s + 4]))
        for s in (0, 4)
    ]
    seen: list[float] = []
    result = ablation_effect(ArgmaxNet(), "hidden", batches, device="cpu", progress=seen.append)
    np.testing.assert_allclose(result["per_unit_drop"], np.array([4, 3, 1]) / 8)
    assert seen == [0.5, 1.0]


def test_an_unknown_layer_is_an_error_suggesting_close_names() -> None:
    with pytest.raises(LayerError, match="hidden"):
        ablation_effect(ArgmaxNet(), "hiden", _images([0]), targets=[0], device="cpu")
