"""The GAN trainer writes a checkpoint the generator loader reads, and resumes from it."""

from __future__ import annotations

import torch

from tasks.engine.gan.data import make_canvases
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
