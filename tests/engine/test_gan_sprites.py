"""The layered generator (``sprites32``): its layout, its drawing, its units, its training crops, each
checked against the rule written out again here."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.engine.errors import DatasetError, EngineError
from tasks.engine.gan.data import digit_crops, load_canvases, make_canvases
from tasks.engine.gan.intervene import Intervention, intervening
from tasks.engine.gan.models import SPRITE_AT, SpriteGenerator, load_generator
from tasks.engine.gan.train import GanRecipe, train_gan

from .gan_helpers import reference_z

N, SEED, Z = 40, 3, 24  # z_dim 24: ten digits, ten corner values, two styles of two


def _generator(smooth: bool = False) -> SpriteGenerator:
    torch.manual_seed(0)
    gen = SpriteGenerator(z_dim=Z, width=4, per_digit=3, render=4, smooth=smooth)
    with torch.no_grad():
        for m in gen.modules():
            if isinstance(m, torch.nn.BatchNorm2d):  # eval BatchNorm that is not the identity
                m.running_mean.uniform_(-0.2, 0.2)
                m.weight.uniform_(0.5, 1.5)
        for conv in (gen.layer3[0], gen.output):  # random drawing stages that draw something everywhere
            conv.weight.normal_(0.0, 0.5)
    return gen.eval()


def _layout_by_hand(z: torch.Tensor, digit_size: int = 14, min_gap: int = 8):
    """The documented rule: the two largest of the first ten values, lower digit first; corners from the next
    ten through the normal CDF onto 0..32 - size, the second the first candidate min_gap apart."""
    first = z.flatten()[:10].tolist()
    digits = sorted(sorted(range(10), key=lambda d: -first[d])[:2])
    span = 32 - digit_size + 1
    values = [min(span - 1, int(0.5 * (1 + math.erf(v / math.sqrt(2))) * span)) for v in z.flatten()[10:20].tolist()]
    places = [(values[2 * k], values[2 * k + 1]) for k in range(5)]
    second = next((p for p in places[1:4] if max(abs(p[0] - places[0][0]), abs(p[1] - places[0][1])) >= min_gap),
                  places[4])
    return digits, [places[0], second]


def _placed(sprite: torch.Tensor, corner: tuple[int, int]) -> torch.Tensor:
    """A 32 px sprite crop (digit's top-left at SPRITE_AT) moved so the digit's top-left lands on ``corner``."""
    big = torch.zeros(96, 96)
    top, left = 32 + corner[0] - SPRITE_AT, 32 + corner[1] - SPRITE_AT
    big[top : top + 32, left : left + 32] = sprite
    return big[32:64, 32:64]


@pytest.mark.parametrize("smooth", [False, True])
def test_each_shown_digit_is_its_own_sprite_at_the_corner_the_layout_gives_and_the_picture_their_maximum(
        smooth: bool) -> None:
    gen = _generator(smooth)
    drawn = 0
    for i in range(N):
        z = reference_z(i, Z, SEED)
        digits, corners = _layout_by_hand(z)
        got_digits, got_corners = gen.layout(z)
        assert got_digits[0].tolist() == digits and [tuple(c) for c in got_corners[0].tolist()] == corners
        assert all(0 <= v <= 18 for c in corners for v in c)
        styles = z.flatten()[20:24].view(2, 2)
        with torch.no_grad():
            sprites = gen.render_sprites(styles, torch.tensor(digits))[:, 0]
            strokes = gen.strokes(z)[0]
            picture = gen(z)[0, 0]
        for k, d in enumerate(digits):
            torch.testing.assert_close(strokes[d], _placed(sprites[k], corners[k]))
            drawn += bool(strokes[d].sum() > 0)
        for d in set(range(10)) - set(digits):
            assert torch.equal(strokes[d], torch.zeros(32, 32))
        torch.testing.assert_close(picture, 2 * torch.maximum(strokes[digits[0]], strokes[digits[1]]) - 1)
    assert drawn > N, "the sprites must draw something for the test to bite"


def test_removing_a_digits_units_leaves_exactly_the_other_digits_strokes_and_switching_them_on_draws_it() -> None:
    gen = _generator()
    digit, units = 4, [12, 13, 14]  # 3 units per digit: digit 4 owns 12, 13 and 14
    changed = inserted = 0
    for i in range(N):
        z = reference_z(i, Z, SEED)
        digits, _ = _layout_by_hand(z)
        with torch.no_grad():
            strokes = gen.strokes(z)[0]
            plain = gen(z)[0, 0]
            with intervening(gen, Intervention("layer2", units)):
                after = gen(z)[0, 0]
            others = [strokes[d] for d in digits if d != digit]
            torch.testing.assert_close(after, 2 * torch.stack(others).amax(0) - 1)
            changed += digit in digits and not torch.equal(after, plain)
            if digit not in digits:
                with intervening(gen, Intervention("layer2", units, "insert", values=2.0)):
                    inserted += not torch.equal(gen(z)[0, 0], plain)
    assert changed > 0 and inserted > 0, "both kinds of picture must change for the test to bite"


def test_a_digits_crop_holds_its_own_masked_pixels_with_its_corner_at_the_sprites_place(tmp_path) -> None:
    root = make_canvases(tmp_path / "data", n_images=8, canvas=32)
    data = load_canvases(root)
    crops = digit_crops(root, data, SPRITE_AT)
    assert len(crops) == 16 and crops.images.shape == (16, 32, 32)
    import csv

    rows = list(csv.DictReader((root / "sources.csv").open()))
    k = 0
    for i, row in enumerate(rows):
        for digit, corner in zip(row["digits"].split(";"), row["corners"].split(";")):
            r, c = (int(v) for v in corner.split())
            assert int(crops.digits[k]) == int(digit)
            own = torch.where(data.labels[i] == int(digit) + 1, data.images[i], torch.zeros_like(data.images[i]))
            assert own.sum() > 0
            torch.testing.assert_close(_placed(crops.images[k].float(), (r, c)), own.float())
            k += 1
    (root / "sources.csv").write_text("image,digits,source_ids,corners\n00000.png,3;4,1;2,40 2;1 1\n")
    with pytest.raises(DatasetError, match="corners"):
        digit_crops(root, load_canvases(root, limit=1), SPRITE_AT)


def test_the_trainer_makes_a_sprites_generator_that_loads_and_refuses_what_it_cannot_draw(tmp_path) -> None:
    data = make_canvases(tmp_path / "data", n_images=20, canvas=32)
    recipe = GanRecipe(steps=2, batch_size=4, z_dim=Z, width=4, units=30, sprites=True)
    metrics = train_gan(data, tmp_path / "g.pt", recipe=recipe, device="cpu", progress=False)
    gen = load_generator(checkpoint=tmp_path / "g.pt")
    assert isinstance(gen, SpriteGenerator) and metrics["steps"] == 2
    assert (gen.per_digit, gen.digit_size) == (3, 14)
    with torch.no_grad():
        out = gen(torch.randn(3, Z))
    assert out.shape == (3, 1, 32, 32) and float(out.min()) >= -1.0 and float(out.max()) < 1.0
    with pytest.raises(EngineError, match="divisible by 10"):
        train_gan(data, tmp_path / "n.pt", recipe=GanRecipe(steps=1, batch_size=4, z_dim=Z, width=4, units=25,
                                                            sprites=True), device="cpu", progress=False)
    with pytest.raises(EngineError, match="32 px"):
        train_gan(make_canvases(tmp_path / "big", n_images=4, canvas=64), tmp_path / "b.pt",
                  recipe=GanRecipe(steps=1, batch_size=4, z_dim=Z, width=4, sprites=True), device="cpu",
                  progress=False)
    with pytest.raises(EngineError, match="z_dim"):
        SpriteGenerator(z_dim=21)


def test_the_checkpoint_holds_the_moving_average_of_the_trained_weights_and_resuming_keeps_both(tmp_path) -> None:
    data = make_canvases(tmp_path / "data", n_images=20, canvas=32)

    def run(name: str, steps: int, ema: float) -> dict:
        recipe = GanRecipe(steps=steps, batch_size=4, z_dim=Z, width=4, units=30, sprites=True, ema=ema)
        train_gan(data, tmp_path / name, recipe=recipe, device="cpu", progress=False)
        return torch.load(tmp_path / name, weights_only=True)

    # The documented decay after step t: min(ema, (1 + t) / (10 + t)), i.e. 0.1 after the first step, 2/11 after
    # the second, 0.25 after the third (ema 0.9). Training does not depend on the average, so W1 and W2 (plain
    # runs) are the trained weights of every run, and a one-step average gives the starting weights:
    # E1 = 0.1 W0 + 0.9 W1.
    w1, w2 = run("w1.pt", 1, 0.0)["state_dict"], run("w2.pt", 2, 0.0)["state_dict"]
    one = run("one.pt", 1, 0.5)
    averaged = run("ema.pt", 2, 0.9)
    for key, value in averaged["state_dict"].items():
        if key.endswith(("running_mean", "running_var", "num_batches_tracked")):
            assert torch.equal(value, w2[key])  # statistics copied from the trained generator
            continue
        w0 = (one["state_dict"][key] - 0.9 * w1[key]) / 0.1
        e1 = 0.1 * w0 + 0.9 * w1[key]
        torch.testing.assert_close(value, 2 / 11 * e1 + 9 / 11 * w2[key], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(averaged["train_state"]["generator"][key], w2[key])
    assert any(not torch.equal(averaged["state_dict"][k], w2[k]) for k in w2 if "weight" in k)
    # Resuming picks up the trained weights and the average where they were.
    recipe = GanRecipe(steps=3, batch_size=4, z_dim=Z, width=4, units=30, sprites=True, ema=0.9)
    train_gan(data, tmp_path / "ema.pt", recipe=recipe, device="cpu", progress=False, resume=True)
    resumed = torch.load(tmp_path / "ema.pt", weights_only=True)
    for key in ("stem.0.weight", "output.weight"):
        w3 = resumed["train_state"]["generator"][key]
        assert not torch.equal(w3, w2[key])  # the third step trained on from the second's weights
        torch.testing.assert_close(resumed["state_dict"][key], 0.25 * averaged["state_dict"][key] + 0.75 * w3)
    with pytest.raises(EngineError, match="decay"):
        train_gan(data, tmp_path / "bad.pt", recipe=GanRecipe(steps=1, batch_size=4, z_dim=Z, width=4, units=30,
                                                              sprites=True, ema=1.0), device="cpu", progress=False)


def test_gan_train_with_sprites_writes_the_demos_layered_generator(tmp_path, capsys) -> None:
    from tasks.engine.__main__ import main

    out = tmp_path / "g.pt"
    assert main(["gan", "train", "--data", str(tmp_path / "data"), "--make", "20", "--out", str(out), "--steps", "2",
                 "--batch-size", "4", "--z-dim", str(Z), "--width", "4", "--sprites", "--device", "cpu"]) == 0
    saved = torch.load(out, weights_only=True)
    assert saved["arch"] == "sprites32" and saved["metrics"]["ema"] == 0.999 and saved["config"]["smooth"] is True
    assert "classify.weight" in saved["train_state"]["discriminator"]  # the demo's digit head came along
    assert isinstance(load_generator(checkpoint=out), SpriteGenerator)
    assert "generator checkpoint written" in capsys.readouterr().out


def test_smooth_strokes_are_the_drawn_maps_under_a_binomial_blur() -> None:
    gen = _generator(smooth=True)
    seen: dict[str, torch.Tensor] = {}
    gen.output.register_forward_hook(lambda m, i, o: seen.__setitem__("drawn", o))
    weights = torch.tensor([1.0, 2.0, 1.0])
    checked = 0
    for i in range(4 * N):
        z = reference_z(i, Z, SEED)
        digits, corners = _layout_by_hand(z)
        with torch.no_grad():
            strokes = gen.strokes(z)[0]
        drawn = seen["drawn"][0]  # 40 x 40: the canvas with a 4 px margin, before the blur and the moves
        padded = torch.nn.functional.pad(drawn, (1, 1, 1, 1))
        blurred = sum(weights[a] * weights[b] / 16 * padded[:, a : a + 40, b : b + 40]
                      for a in range(3) for b in range(3))
        for d, (r, c) in zip(digits, corners):
            if (r - 1) % 4 == 0 and (c - 1) % 4 == 0:  # a corner the grid reaches exactly: no move
                torch.testing.assert_close(strokes[d], torch.tanh(torch.relu(blurred[d, 4:36, 4:36])))
                checked += 1
    assert checked > 3, "enough digits must sit on the grid for the test to bite"
