"""Running statistics and IoU counts across the inference-mode boundary.

A sweep adds batches inside ``torch.inference_mode()``; its state is then read, merged or resumed
outside it (``state_dict`` after the loop, ``merge_stats`` on the platform, a resume from memory),
or the other way round. Each case here overflows the kept-value buffer, so the in-place
replacement of the smallest kept values runs, and is checked against torch.quantile on all data.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from tasks.engine.gan.iqr import IqrCounts
from tasks.engine.iou import IouCounts, Vocabulary
from tasks.engine.runningstats import RadixQuantile, RunningQuantile, RunningTopK

QUANTILE = 0.01
IMAGES, SIDE, UNITS = 64, 8, 6  # 4,096 values a unit against a buffer of 43: it overflows at once

MODES = {
    "inference": torch.inference_mode,
    "no_grad": torch.no_grad,
    "plain": contextlib.nullcontext,
}


def _data(seed: int = 0) -> torch.Tensor:
    """Random maps whose last image has only 3 high pixels, so that the sweep ends with a few
    newcomers buffered (below the merge size): whoever reads the state next flushes them."""
    torch.manual_seed(seed)
    acts = torch.randn(IMAGES, UNITS, SIDE, SIDE)
    acts[-1] = -100.0
    acts[-1, :, 0, :3] = 100.0
    return acts


def _expected(acts: torch.Tensor) -> torch.Tensor:
    return torch.quantile(acts.transpose(0, 1).reshape(UNITS, -1), 1 - QUANTILE, dim=1)


def _swept(acts: torch.Tensor, mode: str, images: range | None = None) -> RunningQuantile:
    stat = RunningQuantile(QUANTILE, expected_images=IMAGES, values_per_image=SIDE * SIDE)
    images = images if images is not None else range(IMAGES)
    with MODES[mode]():
        for start in range(images.start, images.stop, 9):
            stat.add(acts[start : min(start + 9, images.stop)])
    return stat


def test_the_data_overflows_the_buffer_and_ends_with_newcomers_pending():
    stat = _swept(_data(), "plain")
    assert stat.dropped
    assert 0 < stat._pending_cols <= stat.capacity() // stat.PENDING_FRACTION


@pytest.mark.parametrize("sweep", ["inference", "no_grad", "plain"])
@pytest.mark.parametrize("after", ["inference", "plain"])
def test_state_dict_and_result_after_a_sweep_in_another_mode_equal_torch_quantile(sweep, after):
    acts = _data()
    stat = _swept(acts, sweep)
    with MODES[after]():
        state = stat.state_dict()
        restored = RunningQuantile.from_state_dict(state)
        assert torch.equal(restored.result(), _expected(acts))
        assert torch.equal(stat.result(), _expected(acts))


@pytest.mark.parametrize("sweep", ["inference", "plain"])
@pytest.mark.parametrize("after", ["inference", "plain"])
def test_shards_swept_in_one_mode_merge_in_the_other_into_the_single_pass_answer(sweep, after):
    acts = _data(1)
    shards = [
        _swept(acts, sweep, range(0, 27)),
        _swept(acts, sweep, range(27, 50)),
        _swept(acts, sweep, range(50, IMAGES)),
    ]
    with MODES[after]():
        merged = RunningQuantile.from_state_dict(shards[0].state_dict())
        for shard in shards[1:]:
            merged.merge(RunningQuantile.from_state_dict(shard.state_dict()))
        assert torch.equal(merged.result(), _expected(acts))
        # merging the live shards (not their states) works too
        live = shards[0]
        for shard in shards[1:]:
            live.merge(shard)
        assert torch.equal(live.result(), _expected(acts))


@pytest.mark.parametrize("own", [True, False])
@pytest.mark.parametrize(
    ("first", "rest"), [("inference", "plain"), ("plain", "inference"), ("inference", "inference")]
)
def test_a_sweep_resumed_from_memory_in_another_mode_equals_one_pass(own, first, rest):
    acts = _data(2)
    stat = _swept(acts, first, range(0, 40))
    saved = stat.state_dict()
    resumed = RunningQuantile.from_state_dict(saved, own=own)
    with MODES[rest]():
        for start in range(40, IMAGES, 9):
            resumed.add(acts[start : min(start + 9, IMAGES)])
        assert torch.equal(resumed.result(), _expected(acts))


def test_a_result_handed_out_outside_inference_mode_is_an_ordinary_tensor():
    acts = _data()
    stat = _swept(acts, "inference")
    thresholds = stat.result()
    assert not thresholds.is_inference()
    thresholds[0] = 0.0  # the caller may change what it was given
    top = RunningTopK(3)
    with torch.inference_mode():
        top.add(acts, torch.arange(IMAGES))
    scores, indices = top.result()
    scores[0, 0], indices[0, 0] = 0.0, 0


@pytest.mark.parametrize(("first", "rest"), [("inference", "plain"), ("plain", "inference")])
def test_radix_quantile_sweeps_in_different_modes_give_torch_quantile(first, rest):
    acts = _data(3)
    stat = RadixQuantile(QUANTILE)
    with MODES[first]():
        for start in range(0, IMAGES, 16):
            stat.add(acts[start : start + 16])
        stat.start_refine()
    resumed = RadixQuantile.from_state_dict(stat.state_dict())
    with MODES[rest]():
        for start in range(0, IMAGES, 16):
            resumed.add(acts[start : start + 16])
        assert torch.equal(resumed.result(), _expected(acts))


def _counts_inputs(seed: int):
    torch.manual_seed(seed)
    vocab = Vocabulary(categories=["object", "part"], numbers=np.array([1, 2, 3]), names=["a", "b", "c"],
                       concept_category=np.array([0, 0, 1]))
    acts = torch.randn(6, 4, 4, 4)
    pix = torch.randint(0, 4, (6, 1, 8, 8))
    return vocab, acts, pix


def _same_counts(left: IouCounts, right: IouCounts) -> None:
    for key in ("truth", "intersect", "activation"):
        assert torch.equal(getattr(left, key), getattr(right, key)), key
    assert left.images == right.images


@pytest.mark.parametrize("rule", ["lite", "original"])
def test_iou_counts_made_in_inference_mode_merge_and_resume_outside_it(rule):
    vocab, acts, pix = _counts_inputs(0)
    thresholds = torch.full((4,), 0.5)
    reference = IouCounts(4, vocab, rule)
    reference.add(acts, thresholds, pix)
    assert int(reference.intersect.sum()) > 0  # the masks do cover labelled pixels
    with torch.inference_mode():
        first, second = IouCounts(4, vocab, rule), IouCounts(4, vocab, rule)
        first.add(acts[:3], thresholds, pix[:3])
        second.add(acts[3:], thresholds, pix[3:])
    first.merge(second)  # counts made in inference mode, changed in place outside it
    _same_counts(first, reference)
    total = IouCounts(4, vocab, rule)  # a plain collector summing counts made in inference mode
    total.merge(second)
    with torch.inference_mode():
        resumed = IouCounts(4, vocab, rule)
        resumed.add(acts[:3], thresholds, pix[:3])
    total.merge(resumed)
    _same_counts(total, reference)
    again = IouCounts(4, vocab, rule)
    again.load_state_dict(resumed.state_dict())  # a resume from memory: the tensors are taken over
    again.add(acts[3:], thresholds, pix[3:])
    _same_counts(again, reference)


def test_iqr_histogram_made_in_inference_mode_keeps_counting_outside_it():
    torch.manual_seed(4)
    acts = torch.randn(4, 3, 4, 4)
    labels = torch.randint(0, 3, (4, 8, 8))
    candidates = torch.sort(torch.randn(3, 5), dim=1).values
    reference = IqrCounts(candidates, 3)
    reference.add(acts, labels)
    with torch.inference_mode():
        counts = IqrCounts(candidates, 3)
        counts.add(acts[:2], labels[:2])
    counts.add(acts[2:], labels[2:])
    assert torch.equal(counts.hist, reference.hist)
