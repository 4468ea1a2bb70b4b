"""Attack: a job's shard states, written by the site itself, are read with torch's weights-only
unpickler, so a file swapped in under the job's folder cannot run code in the worker."""
import pickle

import pytest
import torch

from tests.engine.test_own_files_load_weights_only import MARKER_NAME, Payload


def test_a_shard_state_carrying_code_is_refused(tmp_path):
    from units.dissection.runner import _load, _save_atomic

    marker = tmp_path / MARKER_NAME
    torch.save({"evil": Payload(marker)}, tmp_path / "shard-0.pt")
    with pytest.raises(pickle.UnpicklingError):
        _load(tmp_path / "shard-0.pt")
    assert not marker.exists()
    _save_atomic({"state": torch.ones(2), "n": 3}, tmp_path / "shard-1.pt")
    assert _load(tmp_path / "shard-1.pt")["n"] == 3
