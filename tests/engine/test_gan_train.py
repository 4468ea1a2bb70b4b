"""The GAN trainer writes a checkpoint the generator loader reads, resumes from it, and takes a guide segmenter."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.engine.errors import EngineError
from tasks.engine.gan.data import load_canvases, make_canvases
from tasks.engine.gan.models import DigitSegmenter, load_generator
from tasks.engine.gan.train import GanRecipe, guide_loss, train_gan


def test_training_writes_a_loadable_generator_and_resuming_continues_the_step_count(tmp_path) -> None:
    data = make_canvases(tmp_path / "data", n_images=20, canvas=32)
    first = train_gan(data, tmp_path / "g.pt", recipe=GanRecipe(steps=2, batch_size=4, z_dim=8, width=4), device="cpu",
                      progress=False)
    assert first["steps"] == 2
    gen = load_generator(checkpoint=tmp_path / "g.pt")
    with torch.no_grad():
        out = gen(torch.zeros(3, 8))
    assert out.shape == (3, 1, 32, 32) and float(out.abs().max()) <= 1.0
    before = {k: v.clone() for k, v in gen.state_dict().items()}
    again = train_gan(data, tmp_path / "g.pt", recipe=GanRecipe(steps=3, batch_size=4, z_dim=8, width=4), device="cpu",
                      progress=False, resume=True)
    assert again["steps"] == 3 and again["seconds"] >= first["seconds"]
    after = load_generator(checkpoint=tmp_path / "g.pt").state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if after[k].is_floating_point())


class _FixedReader(torch.nn.Module):
    """A stand-in segmenter whose logits are a fixed function of the picture, so the loss can be written out."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 11))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale[None, :, None, None] + torch.arange(11.0)[None, :, None, None] * 0.1


def test_the_guide_loss_is_the_weighted_pixel_cross_entropy_plus_each_shown_digits_best_pixel() -> None:
    torch.manual_seed(0)
    strokes = torch.rand(2, 10, 4, 4) * 0.9
    strokes[:, 5:] = 0.0  # pathways 5-9 draw nothing
    picture = 2 * strokes.amax(1, keepdim=True) - 1
    digits = torch.zeros(2, 10)
    digits[0, [1, 3]] = 1
    digits[1, [0, 4]] = 1
    reader = _FixedReader()
    got = float(guide_loss(reader, strokes, picture, digits).detach())
    # By hand, pixel by pixel.
    logits = reader(picture).detach()
    total = weights = 0.0
    for b in range(2):
        for i in range(4):
            for j in range(4):
                values = [float(strokes[b, d, i, j]) for d in range(10)]
                best = max(range(10), key=lambda d: values[d])
                target = best + 1 if values[best] > 0.5 else 0
                row = [float(v) for v in logits[b, :, i, j]]
                log_sum = math.log(sum(math.exp(v) for v in row))
                w = 10.0 if target else 1.0
                total += w * (log_sum - row[target])
                weights += w
    presence, shown = 0.0, 0
    probs = logits.softmax(1)
    for b in range(2):
        for d in range(10):
            if digits[b, d]:
                presence -= math.log(float(probs[b, d + 1].max()) + 1e-6)
                shown += 1
    assert got == pytest.approx(total / weights + presence / shown, rel=1e-5)


def test_a_guide_segmenter_trains_the_pathways_generator_and_nothing_else(tmp_path) -> None:
    data = make_canvases(tmp_path / "data", n_images=20, canvas=32)
    guide = DigitSegmenter(width=4)
    before = {k: v.clone() for k, v in guide.state_dict().items()}
    recipe = GanRecipe(steps=2, batch_size=4, z_dim=12, width=4, conditional=True, units=20, gating="fixed",
                       pathways=True, guide_weight=1.0)
    metrics = train_gan(data, tmp_path / "g.pt", recipe=recipe, device="cpu", progress=False, guide=guide)
    assert metrics["guide_weight"] == 1.0
    assert all(torch.equal(before[k], v) for k, v in guide.state_dict().items())  # the guide stays frozen
    unguided = train_gan(data, tmp_path / "u.pt", recipe=recipe, device="cpu", progress=False)
    assert unguided["guide_weight"] == 0.0
    with pytest.raises(EngineError, match="pathways"):
        train_gan(data, tmp_path / "d.pt", recipe=GanRecipe(steps=1, batch_size=4, z_dim=12, width=4, guide_weight=1.0),
                  device="cpu", progress=False, guide=guide)


def test_a_canvas_split_into_digit_layers_gives_each_digit_its_own_pixels_and_the_canvas_back(tmp_path) -> None:
    data = load_canvases(make_canvases(tmp_path / "data", n_images=6, canvas=32))
    layers, canvas = data.as_layers(slice(None)), data.as_input(slice(None))
    assert layers.shape == (6, 10, 32, 32)
    for b in range(6):
        for d in range(10):
            mine = data.labels[b] == d + 1
            expected = torch.where(mine, data.images[b].float() / 255.0 * 2 - 1, torch.tensor(-1.0))
            torch.testing.assert_close(layers[b, d], expected)
    # The masks are the strokes: the brightest layer at each pixel is the canvas.
    torch.testing.assert_close(layers.amax(1, keepdim=True), canvas, atol=1e-6, rtol=0)


def test_a_layered_discriminator_trains_the_pathways_generator_and_refuses_a_generator_without_them(tmp_path) -> None:
    data = make_canvases(tmp_path / "data", n_images=20, canvas=32)
    recipe = GanRecipe(steps=2, batch_size=4, z_dim=12, width=4, conditional=True, units=20, gating="fixed",
                       pathways=True, layered=True)
    train_gan(data, tmp_path / "g.pt", recipe=recipe, device="cpu", progress=False)
    state = torch.load(tmp_path / "g.pt", weights_only=True)["train_state"]["discriminator"]
    assert state["features.0.weight"].shape[1] == 10  # the discriminator reads the ten stroke maps
    with pytest.raises(EngineError, match="pathways"):
        train_gan(data, tmp_path / "n.pt", recipe=GanRecipe(steps=1, batch_size=4, z_dim=12, width=4, conditional=True,
                                                            units=20, gating="fixed", layered=True),
                  device="cpu", progress=False)
