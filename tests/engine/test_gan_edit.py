"""The single-image edit for the paint page, and loading generators by architecture + state_dict."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from tasks.engine.errors import CheckpointError, EngineError, LayerError
from tasks.engine.gan.edit import Latent, edit_image
from tasks.engine.gan.models import load_generator, save_checkpoint

from .gan_helpers import forward_by_hand, reference_z, tiny_generator


def _rgb(image: torch.Tensor) -> np.ndarray:
    grey = ((image[0, 0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()
    return np.repeat(grey[..., None], 3, axis=2)


def test_an_edit_returns_the_unedited_and_the_hand_edited_image() -> None:
    gen = tiny_generator()
    z = reference_z(4, gen.z_dim, 0)
    box = (8, 0, 16, 12)  # rows 8..15 -> cells 2..3; columns 0..11 -> cells 0..2

    def edit(name, x):
        if name == "layer2":
            x[0, [2, 5], 2:4, 0:3] = 0.0
        return x

    result = edit_image(gen, layer="layer2", units=[2, 5], mode="remove", latent=Latent(seed=4), region=box)
    np.testing.assert_array_equal(result.before, _rgb(forward_by_hand(gen, z)[0]))
    np.testing.assert_array_equal(result.after, _rgb(forward_by_hand(gen, z, edit)[0]))
    assert (result.before != result.after).any()
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(result.after_png()))), result.after)
    same = edit_image(gen, layer="layer2", units=[2, 5], latent=Latent(z=z[0].numpy()), region=box)
    np.testing.assert_array_equal(same.after, result.after)
    painted = np.zeros((32, 32), dtype=bool)
    painted[8:16, 0:12] = True  # the box painted as a mask, sent as JSON rows of booleans
    from_json = edit_image(gen, layer="layer2", units=[2, 5], latent=Latent(seed=4), region=painted.tolist())
    np.testing.assert_array_equal(from_json.after, result.after)


def test_insert_sets_the_units_to_the_given_values() -> None:
    gen = tiny_generator()
    z = reference_z(0, gen.z_dim, 0)

    def edit(name, x):
        if name == "layer1":
            x[0, 3] = 7.0
        return x

    result = edit_image(gen, layer="layer1", units=[3], mode="insert", latent=Latent(z=z), values=7.0)
    np.testing.assert_array_equal(result.after, _rgb(forward_by_hand(gen, z, edit)[0]))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(units=[1], region=(0, 0, 40, 8)), EngineError, "outside the 32x32 image"),
    (dict(units=[1], region=(-1, 0, 8, 8)), EngineError, "outside"),
    (dict(units=[1], region=(8, 8, 8, 12)), EngineError, "outside the 32x32 image or empty"),
    (dict(units=[1], region=np.zeros((32, 32), dtype=bool)), EngineError, "region is empty"),
    (dict(units=[]), EngineError, "no unit selected"),
    (dict(units=[8]), EngineError, r"unknown unit\(s\) \[8\] in layer 'layer2': it has units 0..7"),
    (dict(units=[1], mode="erase"), EngineError, "unknown mode 'erase'"),
    (dict(units=[1], layer="layer9"), LayerError, "layer 'layer9' is not in the model"),
    (dict(units=[1], seed=None), EngineError, "exactly one of z or seed"),
    (dict(units=[1], z=np.zeros(5)), EngineError, "z_dim=8"),
    (dict(units=[1], seed=-3), EngineError, "sample index"),
])
def test_bad_edit_requests_raise_clear_engine_errors(kwargs, error, message) -> None:
    gen = tiny_generator()
    args = {"layer": "layer2", "seed": 1, **kwargs}
    if "z" in kwargs:
        args["seed"] = None
    latent = Latent(z=args.pop("z", None), seed=args.pop("seed"))
    with pytest.raises(error, match=message):
        edit_image(gen, latent=latent, **args)


def test_any_generator_saved_as_architecture_and_state_dict_loads_the_same(tmp_path) -> None:
    gen = tiny_generator(seed=7)
    save_checkpoint(gen, tmp_path / "g.pt", kind="generator", arch="dcgan32")
    loaded = load_generator(checkpoint=tmp_path / "g.pt")
    z = torch.randn(3, gen.z_dim)
    torch.testing.assert_close(loaded(z), gen(z), rtol=0, atol=0)
    torch.save(gen.state_dict(), tmp_path / "bare.pt")  # a bare state_dict needs the architecture and config
    bare = load_generator("dcgan32", tmp_path / "bare.pt", config={"z_dim": 8, "width": 4})
    torch.testing.assert_close(bare(z), gen(z), rtol=0, atol=0)
    with pytest.raises(CheckpointError, match="does not fit architecture 'dcgan32'"):
        load_generator("dcgan32", tmp_path / "bare.pt")  # default width 32: shapes differ
    with pytest.raises(EngineError, match="Unknown generator architecture 'stylegan'"):
        load_generator("stylegan", tmp_path / "bare.pt")
    save_checkpoint(gen, tmp_path / "s.pt", kind="segmenter", arch="digitseg")
    with pytest.raises(CheckpointError, match="is a segmenter checkpoint, not a generator"):
        load_generator(checkpoint=tmp_path / "s.pt")


def test_the_64_px_generator_has_one_more_stage_and_edits_the_same_way() -> None:
    gen = load_generator("dcgan64", config={"z_dim": 8, "width": 4})
    assert gen(torch.zeros(2, 8)).shape == (2, 1, 64, 64)
    result = edit_image(gen, layer="layer4", units=[0, 1, 2, 3], latent=Latent(seed=0), region=(0, 0, 32, 64))
    assert result.before.shape == (64, 64, 3)
    assert result.after.shape == (64, 64, 3) and result.region.shape == (64, 64)
    with pytest.raises(EngineError, match="outside the 64x64 image"):
        edit_image(gen, layer="layer4", units=[0], latent=Latent(seed=0), region=(0, 0, 65, 10))
