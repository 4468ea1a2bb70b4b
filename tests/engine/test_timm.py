"""timm architectures by name (the optional timm package, pinned in requirements.txt so CI runs these)."""

from __future__ import annotations

import sys
import time

import pytest
import torch

from tasks.engine.catalogue import input_spec
from tasks.engine.datasets import open_dataset
from tasks.engine.dissect import DissectOptions, dissect
from tasks.engine.errors import CheckpointError, EngineError
from tasks.engine.layers import layer_table
from tasks.engine.models import load_model
from tests.engine.factories import write_broden

pytest.importorskip("timm")


def test_a_timm_vit_is_built_for_the_input_size_and_its_blocks_read_as_maps(tmp_path):
    spec = input_spec("timm:vit_tiny_patch16_224")
    assert spec.fixed and spec.mean == (0.5, 0.5, 0.5)
    model = load_model("timm:vit_tiny_patch16_224", None, image_size=32)
    row = next(r for r in layer_table(model, 32) if r.name == "blocks.11")
    assert row.shape == [5, 192] and row.units == 192 and row.map_size == [2, 2]

    fake = write_broden(tmp_path / "broden", n_images=9, size=32, seg_size=16, seed=2)
    dataset = open_dataset(f"broden:{fake.root}", mean=list(spec.mean), std=list(spec.std))
    result = dissect(model, dataset, DissectOptions(layers=["blocks.11"], batch_size=8, top_k=2, render=False,
                                                    progress_bar=False), tmp_path / "out")
    assert result.layers["blocks.11"].num_units == 192


def test_a_timm_checkpoint_is_checked_like_any_other(tmp_path):
    path = tmp_path / "atto.pth"
    torch.save(load_model("timm:convnext_atto", None, num_classes=4).state_dict(), path)
    assert load_model("timm:convnext_atto", path).head.fc.out_features == 4
    with pytest.raises(CheckpointError, match="does not fit architecture 'timm:resnet18': missing keys"):
        load_model("timm:resnet18", path)


def test_an_unknown_timm_name_names_close_ones():
    with pytest.raises(EngineError, match="timm has no architecture 'convnext_atoo' \\(close names: convnext_atto"):
        load_model("timm:convnext_atoo", None)


def test_pretrained_weights_offline_are_a_clear_error_at_once(monkeypatch):
    from tasks.engine import timm_models

    monkeypatch.setattr(timm_models, "hub_reachable", lambda *a, **k: False)
    started = time.monotonic()
    with pytest.raises(CheckpointError, match="Cannot reach huggingface.co .* pass --checkpoint weights.pth"):
        load_model("timm:resnet18.a1_in1k", "pretrained")
    assert time.monotonic() - started < 5


def test_the_hub_check_gives_up_quickly_on_an_address_that_does_not_answer():
    from tasks.engine.timm_models import hub_reachable

    started = time.monotonic()
    assert hub_reachable("127.0.0.1", timeout=1.0) is False  # nothing listens on port 443 here
    assert time.monotonic() - started < 3


def test_without_timm_installed_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` raise ImportError
    with pytest.raises(EngineError, match="need the optional timm package: pip install timm==1.0.29"):
        load_model("timm:resnet18", None)
