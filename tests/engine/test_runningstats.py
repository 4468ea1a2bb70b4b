"""Running statistics against the plain full-data computation (torch.topk, torch.quantile)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.engine.errors import EngineError
from tasks.engine.runningstats import RunningQuantile, RunningTopK, load_thresholds


def _batches(acts: torch.Tensor, size: int):
    for start in range(0, acts.shape[0], size):
        yield acts[start : start + size], torch.arange(start, min(start + size, acts.shape[0]))


def _reference_topk(acts: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per unit: sort images by (spatial max desc, index asc) with plain Python."""
    maxes = acts.flatten(2).amax(2)
    scores, indices = [], []
    for u in range(acts.shape[1]):
        order = sorted(range(acts.shape[0]), key=lambda n: (-float(maxes[n, u]), n))[:k]
        indices.append(order)
        scores.append([float(maxes[n, u]) for n in order])
    return torch.tensor(scores), torch.tensor(indices)


def test_top_k_matches_torch_topk_on_random_data():
    acts = torch.randn(37, 5, 3, 4)
    stat = RunningTopK(6)
    for batch, idx in _batches(acts, 8):
        stat.add(batch, idx)
    scores, indices = stat.result()
    expected = acts.flatten(2).amax(2).t().topk(6, dim=1)
    assert torch.equal(scores, expected.values)
    assert torch.equal(indices, expected.indices)


def test_top_k_breaks_ties_by_the_lower_image_index():
    # Values drawn from 3 levels: many images share each unit's maximum.
    acts = torch.randint(0, 3, (40, 4, 2, 2)).float()
    stat = RunningTopK(10)
    # Feed batches in reverse order so the kept set never arrives sorted by index.
    for batch, idx in reversed(list(_batches(acts, 7))):
        stat.add(batch, idx)
    scores, indices = stat.result()
    ref_scores, ref_indices = _reference_topk(acts, 10)
    assert torch.equal(indices, ref_indices)
    assert torch.equal(scores, ref_scores)


def test_top_k_shards_merged_equal_a_single_pass():
    acts = torch.randint(0, 4, (30, 3, 2, 2)).float()
    single = RunningTopK(5)
    single.add(acts, torch.arange(30))
    left, right = RunningTopK(5), RunningTopK(5)
    right.add(acts[13:], torch.arange(13, 30))
    left.add(acts[:13], torch.arange(13))
    right.merge(left)
    restored = RunningTopK.from_state_dict(right.state_dict())
    assert torch.equal(restored.result()[1], single.result()[1])
    assert torch.equal(restored.result()[0], single.result()[0])
    assert restored.count == 30


@pytest.mark.parametrize("quantile", [0.005, 0.01, 0.2])
def test_quantile_equals_torch_quantile_while_keeping_few_values(quantile):
    torch.manual_seed(1)
    acts = torch.randn(50, 4, 6, 5)
    stat = RunningQuantile(quantile, expected_images=50)
    for batch, _ in _batches(acts, 9):
        stat.add(batch)
    per_unit = acts.transpose(0, 1).reshape(4, -1)
    expected = torch.quantile(per_unit, 1 - quantile, dim=1)
    assert torch.equal(stat.result(), expected)  # result() also folds the buffer in
    # Bounded memory: far fewer values kept than seen (1500 per unit).
    assert stat.top.shape[1] <= int(np.ceil(quantile * 1500)) + 2
    assert stat.state_dict()["top"].shape[1] <= int(np.ceil(quantile * 1500)) + 2


def test_quantile_without_a_size_hint_keeps_everything_and_is_still_exact():
    acts = torch.rand(11, 3, 4, 4)
    stat = RunningQuantile(0.05)
    for batch, _ in _batches(acts, 4):
        stat.add(batch)
    expected = torch.quantile(acts.transpose(0, 1).reshape(3, -1), 0.95, dim=1)
    assert torch.equal(stat.result(), expected)


def test_quantile_shards_merged_equal_a_single_pass_even_when_the_top_sits_in_one_shard():
    torch.manual_seed(2)
    acts = torch.randn(40, 3, 4, 4)
    acts[:5] += 10  # every large value lies in the first shard
    shards = []
    for lo, hi in [(0, 20), (20, 40)]:
        s = RunningQuantile(0.01, expected_images=40)
        s.add(acts[lo:hi])
        shards.append(RunningQuantile.from_state_dict(s.state_dict()))
    shards[1].merge(shards[0])
    expected = torch.quantile(acts.transpose(0, 1).reshape(3, -1), 0.99, dim=1)
    assert torch.equal(shards[1].result(), expected)


def test_quantile_hand_worked_on_ten_values():
    # Values 0..9 of one unit, top 10%: torch.quantile(x, 0.9) = rank 0.9 * 9 = 8.1 -> 8 + 0.1 * (9 - 8).
    stat = RunningQuantile(0.1, expected_images=10)
    stat.add(torch.arange(10.0).view(10, 1, 1, 1))
    assert stat.result().item() == pytest.approx(8.1)


def test_quantile_refuses_more_images_than_announced():
    stat = RunningQuantile(0.01, expected_images=2)
    stat.add(torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match="expected_images"):
        stat.add(torch.zeros(1, 1, 2, 2))


def test_thresholds_load_from_npy_and_npz_and_bad_files_say_what_to_do(tmp_path):
    np.save(tmp_path / "t.npy", np.arange(4, dtype=np.float32))
    assert load_thresholds(tmp_path / "t.npy", ["layer4"])["layer4"].tolist() == [0, 1, 2, 3]
    np.savez(tmp_path / "t.npz", layer3=np.ones(2), layer4=np.zeros(3))
    loaded = load_thresholds(tmp_path / "t.npz", ["layer3", "layer4"], {"layer3": 2, "layer4": 3})
    assert loaded["layer3"].tolist() == [1, 1]
    with pytest.raises(EngineError, match="layer4.*3 values.*5 units"):
        load_thresholds(tmp_path / "t.npz", ["layer4"], {"layer4": 5})
    with pytest.raises(EngineError, match="no array for layer.*conv9"):
        load_thresholds(tmp_path / "t.npz", ["conv9"])
    with pytest.raises(EngineError, match="does not exist"):
        load_thresholds(tmp_path / "missing.npy", ["layer4"])


@pytest.mark.parametrize("quantile", [0.005, 0.3])
@pytest.mark.parametrize("kind", ["normal", "relu", "ties", "negative"])
def test_radix_quantile_equals_torch_quantile_after_its_two_sweeps(quantile, kind):
    from tasks.engine.runningstats import RadixQuantile

    torch.manual_seed(4)
    acts = {
        "normal": torch.randn(45, 3, 5, 4),
        "relu": torch.relu(torch.randn(45, 3, 5, 4)),  # mostly zeros: the answer may be 0
        "ties": torch.randint(0, 5, (45, 3, 5, 4)).float(),
        "negative": -torch.rand(45, 3, 5, 4) * 1e-3,
    }[kind]
    stat = RadixQuantile(quantile)
    for batch, _ in _batches(acts, 8):
        stat.add(batch)
    stat = RadixQuantile.from_state_dict(stat.state_dict())  # resumable between the sweeps
    stat.start_refine()
    for batch, _ in _batches(acts, 11):  # other batch boundaries: only the values matter
        stat.add(batch)
    expected = torch.quantile(acts.transpose(0, 1).reshape(3, -1), 1 - quantile, dim=1)
    assert torch.equal(stat.result(), expected)
    assert stat.hist.numel() == 3 * 2**16  # memory fixed by the unit count, not the data


def test_radix_quantile_refuses_a_result_before_its_second_sweep():
    from tasks.engine.runningstats import RadixQuantile

    stat = RadixQuantile(0.1)
    stat.add(torch.rand(4, 2, 3, 3))
    with pytest.raises(ValueError, match="second sweep"):
        stat.result()


def test_quantile_resumed_from_its_state_equals_one_pass_and_leaves_the_saved_state_alone():
    torch.manual_seed(3)
    acts = torch.randn(60, 5, 4, 4)
    whole = RunningQuantile(0.05, expected_images=60)
    for batch, _ in _batches(acts, 7):
        whole.add(batch)
    first = RunningQuantile(0.05, expected_images=60)
    for batch, _ in _batches(acts[:30], 7):
        first.add(batch)
    state = first.state_dict()
    saved = state["top"].clone()
    resumed = RunningQuantile.from_state_dict(state)
    for batch, _ in _batches(acts[30:], 7):
        resumed.add(batch)
    assert torch.equal(resumed.result(), whole.result())
    assert torch.equal(resumed.result(), torch.quantile(acts.transpose(0, 1).reshape(5, -1), 0.95, dim=1))
    assert torch.equal(state["top"], saved)  # the loaded tensor was copied before the merges changed it


_PEAK_SCRIPT = r"""
import json, sys, torch
from tasks.engine.runningstats import RunningQuantile
torch.set_num_threads(1)
units, side, images, batch, q = 64, 32, 1024, 32, 0.5

def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024

gen = torch.Generator().manual_seed(0)
stat = RunningQuantile(q, expected_images=images, values_per_image=side * side)
acts = torch.randn(batch, units, side, side, generator=gen)
open("/proc/self/clear_refs", "w").write("5")  # reset the high-water mark: only the statistic grows it
base = hwm()
for start in range(0, images, batch):
    torch.randn(batch, units, side, side, generator=gen, out=acts)
    stat.add(acts)
thresholds = stat.result()
print(json.dumps({"grew": hwm() - base, "capacity": stat.capacity(), "units": units,
                  "batch_values": batch * side * side, "finite": bool(torch.isfinite(thresholds).all())}))
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's resettable peak RSS")
def test_quantile_peak_memory_stays_within_its_estimate_and_near_the_kept_set(tmp_path):
    # A fresh process streams 1,024 maps of 32x32 for 64 units through an exact top-50% threshold
    # (524 k values kept per unit, 134 MB): its peak RSS may grow by the planner's estimate, and the
    # estimate is the kept set plus an eighth, a batch and one step's temporaries, well under the
    # 3.25 copies the former merge into a new tensor and full sort held.
    import json
    import subprocess
    import sys

    import os

    # glibc serves allocations under its (adaptive, up to 32 MB) mmap threshold from a heap whose freed
    # pages it may keep: a fixed low threshold makes the peak the statistic's own allocations (without
    # it this run grows by ~15% more, pages a dissection's forward pass then reuses).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run([sys.executable, "-c", _PEAK_SCRIPT], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[2], env=env)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    kept = seen["units"] * seen["capacity"] * 4
    estimate = RunningQuantile.memory_bytes(seen["units"], seen["capacity"], seen["batch_values"])
    assert seen["finite"]
    assert kept * 0.9 <= seen["grew"] <= estimate, (seen["grew"], kept, estimate)
    assert estimate <= 2 * kept


def test_a_quantile_that_owns_its_loaded_state_changes_it_in_place_and_stays_exact():
    # A resume from a stage file takes the saved tensor over (no second copy of the kept set).
    torch.manual_seed(4)
    acts = torch.randn(40, 3, 4, 4)
    first = RunningQuantile(0.05, expected_images=40)
    first.add(acts[:20])
    state = first.state_dict()
    loaded = state["top"]
    resumed = RunningQuantile.from_state_dict(state, own=True)
    resumed.add(acts[20:])
    assert resumed.top.data_ptr() == loaded.data_ptr()  # the same storage, changed in place
    assert torch.equal(resumed.result(), torch.quantile(acts.transpose(0, 1).reshape(3, -1), 0.95, dim=1))


def test_radix_key_halves_order_floats_like_the_floats_themselves():
    from tasks.engine.runningstats import _key_halves, _key_values

    values = torch.cat([torch.randn(5000) * 1e3, torch.tensor([0.0, -0.0, 1e-45, -1e-45, float("inf"), float("-inf"),
                                                               3.4e38, -3.4e38])])
    high, low = _key_halves(values)
    # the same key through int64, the plain way: bits + 2**31 for bits >= 0, else -1 - bits
    bits = values.view(torch.int32).to(torch.int64)
    keys = torch.where(bits >= 0, bits + (1 << 31), -1 - bits)
    assert torch.equal(high.to(torch.int64), keys >> 16) and torch.equal(low.to(torch.int64), keys & 0xFFFF)
    order = torch.argsort(keys, stable=True)
    assert bool((values[order][1:] >= values[order][:-1]).all())  # the keys sort the floats
    assert torch.equal(_key_values((high.to(torch.int64) << 16) | low.to(torch.int64)).view(torch.int32),
                       values.view(torch.int32))
