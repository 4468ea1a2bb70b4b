"""The class-conditional generator's gates, the insertion rates and the report's new keys, each checked
against a computation written out again here (per image, stage by stage)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from tasks.engine.gan.intervene import Intervention, causal_effect, intervening, make_baseline
from tasks.engine.gan.models import ConditionalGenerator, load_generator
from tasks.engine.gan.ranking import INSERT_MIN_PIXELS, centre_region, insertion_outcome
from tasks.engine.gan.train import gate_penalty

from .gan_helpers import BandSegmenter, band_segmenter_for, forward_by_hand, labels_of, reference_z, tiny_generator

N, SEED = 16, 3


def _fixed_generator() -> ConditionalGenerator:
    torch.manual_seed(0)
    gen = ConditionalGenerator(z_dim=12, width=2, units=20, gating="fixed")
    with torch.no_grad():
        for m in gen.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.weight.uniform_(0.5, 1.5)
    return gen.eval()


def _shown(z: torch.Tensor) -> set[int]:
    """The documented rule, written out again: the digits are the two largest of z's first ten values."""
    first = z.flatten()[:10].tolist()
    return set(sorted(range(10), key=lambda d: -first[d])[:2])


def test_fixed_gates_zero_every_channel_of_a_digit_not_shown() -> None:
    gen = _fixed_generator()
    seen = {}
    gen.layer2.register_forward_hook(lambda m, i, o: seen.__setitem__("maps", o))
    active_when_shown = 0
    for i in range(N):
        z = reference_z(i, 12, SEED)
        with torch.no_grad():
            gen(z)
        maps = seen["maps"][0]
        for d in range(10):
            channels = maps[2 * d : 2 * d + 2]  # 20 units, 2 per digit: digit d owns 2d and 2d + 1
            if d in _shown(z):
                active_when_shown += bool(channels.abs().sum() > 0)
            else:
                assert torch.equal(channels, torch.zeros_like(channels))
    assert active_when_shown > N // 2, "a shown digit's channels must be on for the test to bite"


def test_removing_a_digits_channels_leaves_every_picture_without_that_digit_unchanged() -> None:
    gen = _fixed_generator()
    seg = band_segmenter_for(gen)
    base = make_baseline(gen, seg, n=N, seed=SEED, batch_size=5)
    digit = 4
    effect = causal_effect(gen, seg, Intervention("layer2", [8, 9]), base, batch_size=5)
    assert effect.before_per_image is not None and effect.after_per_image is not None
    without = [i for i in range(N) if digit not in _shown(reference_z(i, 12, SEED))]
    with_it = [i for i in range(N) if i not in without]
    assert without and with_it, "both kinds of picture must occur for the test to bite"
    np.testing.assert_array_equal(effect.after_per_image[without], effect.before_per_image[without])
    assert (effect.after_per_image[with_it] != effect.before_per_image[with_it]).any()
    np.testing.assert_array_equal(effect.before_per_image.sum(0), effect.before)


@pytest.mark.parametrize("norm", ["scale", "batch"])
def test_with_per_digit_pathways_removing_a_digits_channels_leaves_exactly_the_other_digits_strokes(norm) -> None:
    torch.manual_seed(0)
    gen = ConditionalGenerator(z_dim=12, width=8, units=20, gating="fixed", pathways=True, pathway_norm=norm).eval()
    if norm == "scale":
        gen.threshold.data.fill_(-4.0)  # a low stroke threshold: random weights draw something in every pathway
    else:
        with torch.no_grad():
            gen.layer3[1].running_mean.uniform_(-0.2, 0.2)  # eval BatchNorm that is not the identity
            gen.layer3[1].weight.uniform_(0.5, 1.5)
    digit, changed, inserted = 4, 0, 0
    for i in range(N):
        z = reference_z(i, 12, SEED)
        shown = _shown(z)
        with torch.no_grad():
            multi_hot = torch.zeros(1, 10).index_fill_(1, torch.tensor(sorted(shown)), 1.0)
            maps = gen.layer2.block(gen.layer1(torch.cat([z, gen.embed(multi_hot)], 1)[:, :, None, None]))
            # Digit e's strokes by hand: its two layer2 channels alone through layer3 and the output.
            owner = torch.arange(20) // 2

            def by_hand(e: int, maps: torch.Tensor = maps, owner: torch.Tensor = owner) -> torch.Tensor:
                own = maps * (owner == e).float()[:, None, None]
                out = gen.output(gen.layer3(own))[0, e]
                if norm == "scale":
                    threshold = torch.log1p(torch.exp(gen.threshold[e]))  # softplus by hand
                    return torch.tanh(torch.relu(out - threshold))
                # batch: the pathway's picture while one of its own layer2 channels is on, nothing otherwise
                return (torch.tanh(out) + 1) / 2 * float(bool((own != 0).any()))

            strokes = torch.stack([by_hand(e) for e in range(10)])
            expected = 2 * torch.stack([strokes[e] for e in shown if e != digit]).amax(0) - 1
            with intervening(gen, Intervention("layer2", [2 * digit, 2 * digit + 1])):
                after = gen(z)[0, 0]
        torch.testing.assert_close(after, expected)
        with torch.no_grad():
            plain = gen(z)[0, 0]
            torch.testing.assert_close(plain, 2 * torch.stack([strokes[e] for e in shown]).amax(0) - 1)
            changed += digit in shown and not torch.equal(after, plain)
            if digit not in shown:  # switching the digit's units on draws its pathway where it was not shown
                with intervening(gen, Intervention("layer2", [2 * digit, 2 * digit + 1], "insert", values=5.0)):
                    inserted += not torch.equal(gen(z)[0, 0], plain)
    assert changed > 0 and inserted > 0, "both kinds of picture must change for the test to bite"


def test_insertion_rate_counts_samples_without_the_digit_that_gain_enough_of_it_in_the_region() -> None:
    gen = tiny_generator(seed=1)
    with torch.no_grad():
        grey = gen(torch.randn(64, gen.z_dim, generator=torch.Generator().manual_seed(99))).flatten()
    # Levels packed at the top of the grey range: the upper labels are rare, so some pictures lack them.
    levels = [0.5, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995]
    seg = BandSegmenter(torch.quantile(grey, torch.tensor(levels))).eval()
    base = make_baseline(gen, seg, n=N, seed=SEED)
    region = centre_region((8, 8))
    units, values = [1, 3, 6], [3.0, 3.0, 3.0]
    effect = causal_effect(gen, seg, Intervention("layer2", units, "insert", values=values, region=region), base)
    cells, area = torch.from_numpy(region), torch.from_numpy(region).repeat_interleave(4, 0).repeat_interleave(4, 1)

    def edit(name, x):
        if name == "layer2":
            for k, u in enumerate(units):
                x[0, u][cells] = values[k]
        return x

    per_image = []
    for i in range(N):
        z = reference_z(i, gen.z_dim, SEED)
        per_image.append((labels_of(seg, forward_by_hand(gen, z)[0]), labels_of(seg, forward_by_hand(gen, z, edit)[0])))
    outcomes = set()
    for number in range(1, 11):
        out = insertion_outcome(effect, base, number)
        absent = [i for i, (b, _) in enumerate(per_image) if not (b == number).any()]
        gained = {i: int((per_image[i][1][area] == number).sum() - (per_image[i][0][area] == number).sum())
                  for i in absent}
        ok = [i for i in absent if gained[i] >= INSERT_MIN_PIXELS]
        failed = [i for i in absent if i not in ok]
        assert out["samples"] == len(absent) and out["succeeded"] == len(ok)
        assert out["rate"] == (pytest.approx(len(ok) / len(absent)) if absent else None)
        assert out["failed_examples"] == failed[:4] and out["succeeded_examples"] == ok[:4]

        def other(i: int, number: int = number) -> int:
            before = per_image[i][0][area]
            return int(((before > 0) & (before != number)).sum())

        if failed:
            assert out["other_digit_pixels_in_region_failed"] == pytest.approx(np.mean([other(i) for i in failed]))
        outcomes |= {"succeeded"} if ok else set()
        outcomes |= {"failed"} if failed else set()
    assert outcomes == {"succeeded", "failed"}, "both outcomes must occur for the test to bite"


def test_learned_gates_are_exactly_on_or_off_and_still_learn_through_the_straight_through_gradient() -> None:
    torch.manual_seed(0)
    gen = ConditionalGenerator(z_dim=12, width=2, units=30, gating="learned")
    hard = gen.layer2.gate.hard()
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hard.detach(), (gen.layer2.gate.logits > 0).float())
    gen(torch.randn(4, 12)).sum().backward()
    assert gen.layer2.gate.logits.grad is not None and gen.layer2.gate.logits.grad.abs().sum() > 0
    soft = torch.tensor([[0.9, 0.8, 0.1], [0.5, 0.0, 0.3]])
    # digit 0 expects 1.8 channels, digit 1 0.8: over a budget of 1 by 0.8 and 0; channel 0 serves 1.4 digits.
    assert float(gate_penalty(soft, 1)) == pytest.approx((0.8 + 0.4) / 3)


def test_a_conditional_checkpoint_round_trips_through_the_generator_loader(tmp_path) -> None:
    from tasks.engine.gan.data import make_canvases
    from tasks.engine.gan.train import GanRecipe, train_gan

    data = make_canvases(tmp_path / "data", n_images=20, canvas=32)
    metrics = train_gan(data, tmp_path / "g.pt", recipe=GanRecipe(steps=2, batch_size=4, z_dim=12, width=2, units=20,
                                                                  conditional=True, digit_units=2),
                        device="cpu", progress=False)
    gates = metrics["gates"]
    assert gates["units"] == 20 and len(gates["units_per_digit"]) == 10 and gates["gating"] == "learned"
    gen = load_generator(checkpoint=tmp_path / "g.pt")
    assert isinstance(gen, ConditionalGenerator)
    table = (gen.layer2.gate.logits > 0).float()
    assert gates["units_per_digit"] == [int(v) for v in table.sum(1)]
    assert gen(torch.zeros(2, 12)).shape == (2, 1, 32, 32)
