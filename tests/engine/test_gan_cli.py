"""`python -m tasks.engine gan ...`: dissect and intervene on saved checkpoints, errors exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tasks.engine.__main__ import main
from tasks.engine.gan.models import DigitSegmenter, save_checkpoint
from tasks.engine.tally import read_tally

from .gan_helpers import tiny_generator

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def checkpoints(tmp_path):
    save_checkpoint(tiny_generator(), tmp_path / "g.pt", kind="generator", arch="dcgan32")
    torch.manual_seed(0)
    save_checkpoint(DigitSegmenter(width=4).eval(), tmp_path / "s.pt", kind="segmenter", arch="digitseg")
    return ["--generator", str(tmp_path / "g.pt"), "--segmenter", str(tmp_path / "s.pt")]


def test_gan_dissect_writes_a_tally_of_the_generators_units(checkpoints, tmp_path, capsys) -> None:
    code = main(["gan", "dissect", *checkpoints, "--layers", "layer1,layer2", "--out", str(tmp_path / "out"),
                 "--samples", "10", "--quantile", "0.05", "--top-k", "2"])
    assert code == 0
    assert "layer2: " in capsys.readouterr().out
    assert sorted(r["unit"] for r in read_tally(tmp_path / "out" / "layer2" / "tally.csv")) == list(range(1, 9))
    assert (tmp_path / "out" / "layer1" / "exemplars" / "strips" / "unit_0016.png").is_file()


def test_gan_intervene_numbers_units_as_the_tally_does(checkpoints, tmp_path, capsys) -> None:
    code = main(["gan", "intervene", *checkpoints, "--layer", "layer2", "--units", "1,8", "--samples", "4",
                 "--region-box", "0,0,16,16", "--out", str(tmp_path / "effect.json")])
    assert code == 0
    report = json.loads((tmp_path / "effect.json").read_text())
    assert report["units"] == [1,
                               8] and report["n_images"] == 4 and set(report["effect"]) == {str(d) for d in range(10)}
    capsys.readouterr()
    assert main(["gan", "intervene", *checkpoints, "--layer", "layer2", "--units", "9", "--samples", "2"]) == 2
    assert "unknown unit(s) [9] in layer 'layer2': it has units 1..8" in capsys.readouterr().err


def test_importing_the_gan_package_loads_neither_django_celery_nor_sklearn() -> None:
    modules = sorted(f"tasks.engine.gan.{p.stem}" for p in (ROOT / "tasks" / "engine" / "gan").glob("*.py"))
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'units', "
        "'annotate_site', 'sklearn'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
