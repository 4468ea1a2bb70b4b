"""The GAN trainer writes a checkpoint the generator loader reads, resumes from it, and judges pathways one by one."""

from __future__ import annotations

import pytest
import torch

from tasks.engine.errors import EngineError
from tasks.engine.gan.data import load_canvases, make_canvases
from tasks.engine.gan.models import load_generator
from tasks.engine.gan.train import GanRecipe, train_gan


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
