"""The command line: a dissection run, and clear errors with exit code 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.engine.__main__ import main
from tasks.engine.iou import read_tally
from tasks.engine.models import MixtureNet
from tests.engine.factories import write_broden


@pytest.fixture
def broden(tmp_path):
    return write_broden(tmp_path / "broden", n_images=6, size=16, seg_size=8, seed=5)


@pytest.fixture
def checkpoint(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "net.pt"
    torch.save(MixtureNet(num_classes=45).state_dict(), path)
    return path


def test_dissect_command_writes_a_tally_per_layer(broden, checkpoint, tmp_path, capsys):
    code = main([
        "dissect", "--dataset", f"broden:{broden.root}", "--model", "mixturenet", "--checkpoint", str(checkpoint),
        "--layers", "conv2,conv3", "--out", str(tmp_path / "out"), "--top-k", "2", "--quantile", "0.05",
        "--device", "cpu", "--batch-size", "4", "--iou-rule", "original", "--highlight", "outline",
    ])
    assert code == 0
    printed = capsys.readouterr().out
    assert "conv3: " in printed and "units covering" in printed
    rows = read_tally(tmp_path / "out" / "conv3" / "tally.csv")
    assert sorted(r["unit"] for r in rows) == list(range(1, 11))
    assert (tmp_path / "out" / "conv2" / "exemplars" / "strips" / "unit_0020.jpg").is_file()


def test_thresholds_file_is_used_for_the_layer(broden, checkpoint, tmp_path):
    np.save(tmp_path / "t.npy", np.full(10, 1e9, dtype=np.float32))  # nothing passes: IoU 0
    code = main([
        "dissect", "--dataset", str(broden.root), "--model", "mixturenet", "--checkpoint", str(checkpoint),
        "--layers", "conv3", "--out", str(tmp_path / "out"), "--thresholds", str(tmp_path / "t.npy"),
        "--device", "cpu",
    ])
    assert code == 0
    assert all(r["score"] == 0.0 for r in read_tally(tmp_path / "out" / "conv3" / "tally.csv"))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--layers", "conv4"], "layer 'conv4' is not in the model (close names: conv3, conv2, conv1"),
        (["--layers", "conv3", "--mean", "0.5,0.5"], "--mean must be 3 comma-separated numbers"),
        (["--layers", "conv3", "--checkpoint", "missing.pt"], "missing.pt does not exist"),
        (["--layers", "fc"], "layer 'fc' outputs a pooled vector of 45 units with no height or width"),
        (["--layers", "pool3"], "choose an earlier layer with a spatial map"),
        (["--layers", "conv3", "--grid", "7by9"], "a token grid is written HEIGHTxWIDTH in tokens"),
    ],
)
def test_bad_input_exits_with_code_2_and_one_clear_line(broden, tmp_path, capsys, args, message):
    code = main(["dissect", "--dataset", f"broden:{broden.root}", "--model", "mixturenet",
                 "--out", str(tmp_path / "out"), "--device", "cpu", *args])
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("*/tally.csv"))


def test_a_missing_dataset_exits_with_code_2(tmp_path, capsys):
    code = main(["dissect", "--dataset", f"broden:{tmp_path / 'nowhere'}", "--model", "mixturenet",
                 "--layers", "conv3", "--out", str(tmp_path / "out"), "--device", "cpu"])
    assert code == 2
    assert "nowhere" in capsys.readouterr().err


def test_the_sanity_subcommand_reports_a_missing_digit_source_in_one_line(tmp_path, capsys):
    from tasks.engine.__main__ import main

    code = main(["sanity", "--source", f"idx:{tmp_path / 'nowhere'}", "--out", str(tmp_path / "report")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and "nowhere" in err
    assert not (tmp_path / "report" / "report.json").exists()


def test_mixture_make_refuses_redundant_digits_that_are_not_numbers(tmp_path, capsys):
    code = main(["mixture", "make", "--out", str(tmp_path / "m"), "--images", "2", "--redundant", "8,x"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--redundant must be comma-separated digits" in err and "8,x" in err


def test_the_plan_command_prints_each_layers_spill_size_and_choice_without_reading_images(capsys):
    # 500 rows at 64 px: resnet18 layer1 is 64 units at 16x16, layer4 512 units at 2x2.
    code = main(["plan", "--model", "resnet18", "--layers", "layer1,layer4", "--images", "500", "--size", "64",
                 "--disk-budget", "10MB"])
    out = capsys.readouterr().out
    assert code == 0
    layer1 = 500 * 64 * 16 * 16 * 4 + 128  # float32 bytes of the spill, plus the .npy header
    layer4 = 500 * 512 * 2 * 2 * 4 + 128
    assert f"layer1: 64 units at 16x16 -> recompute (a spill would take {layer1 / 1e6:.2f} MB)" in out
    assert f"layer4: 512 units at 2x2 -> spill float32 {layer4 / 1e6:.2f} MB" in out
    assert out.count("plan: 500 images in 16 batches") == 2  # each layer planned alone
