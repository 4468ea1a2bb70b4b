"""Attack: files the site wrote itself (stage files, shard states) are read with torch's weights-only
unpickler, so a file swapped in under the job's folder cannot run code in the worker."""
import pickle
from pathlib import Path

import pytest
import torch

from tasks.engine.spill import StageCache

MARKER_NAME = "pwned"


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_stage_file_carrying_code_is_refused_and_the_code_never_runs(tmp_path):
    marker = tmp_path / MARKER_NAME
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "plan.json").write_text('{"fingerprint": {"run": 1}}')
    cache = StageCache(tmp_path / "stages", {"run": 1}, resume=True)
    assert cache.resumed
    torch.save({"counts": torch.zeros(2), "evil": Payload(marker)}, tmp_path / "stages" / "sweep.pt")
    with pytest.raises(pickle.UnpicklingError):
        cache.load("sweep")
    assert not marker.exists()


def test_a_stage_file_of_tensors_and_numbers_still_loads(tmp_path):
    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "plan.json").write_text('{"fingerprint": {"run": 1}}')
    cache = StageCache(tmp_path / "stages", {"run": 1}, resume=True)
    cache.save("sweep", {"counts": torch.ones(3), "done": [1, 2], "rate": 0.5, "name": "x"})
    assert cache.load("sweep")["done"] == [1, 2]
