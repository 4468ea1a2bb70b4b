"""Running statistics against the plain full-data computation (torch.topk, torch.quantile)."""

from __future__ import annotations

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
