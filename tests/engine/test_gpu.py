"""The engine on CUDA (skipped without a GPU): same answers as the plain computation there."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tasks.engine.datasets import open_dataset, size_grouped_batches
from tasks.engine.dissect import DissectOptions, dissect
from tests.engine.factories import write_broden

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.Conv2d(6, 5, 3, stride=2, padding=1),
                         nn.ReLU()).eval()


def test_on_cuda_spill_recompute_and_radix_agree_with_torch_quantile_on_the_device(tmp_path):
    fake = write_broden(tmp_path / "b", n_images=30, size=16, seg_size=8, seed=2)
    dataset = open_dataset(f"broden:{fake.root}")
    base = dict(layers=["1", "3"], top_k=3, quantile=0.02, batch_size=4, progress_bar=False, device="cuda", render_k=2)
    spilled = dissect(_net(), dataset, DissectOptions(**base, spill="always"), tmp_path / "s")
    again = dissect(_net(), dataset, DissectOptions(**base, spill="never", channels_last=False), tmp_path / "r")
    radix = dissect(_net(), dataset, DissectOptions(**base, spill="never", threshold_method="radix"), tmp_path / "q")
    model = _net().cuda()
    values = []
    with torch.inference_mode():
        for batch in size_grouped_batches(dataset, range(len(dataset)), 4):
            acts = model(torch.stack([dataset[i].image for i in batch]).cuda())
            values.append(acts.transpose(0, 1).reshape(5, -1))
    expected = torch.quantile(torch.cat(values, dim=1), 0.98, dim=1).cpu().numpy()
    for result in (spilled, again, radix):
        assert np.array_equal(result.layers["3"].thresholds, expected)
        assert np.array_equal(result.layers["3"].iou, spilled.layers["3"].iou)
        assert np.array_equal(result.layers["3"].topk_indices, spilled.layers["3"].topk_indices)
