"""Find layers by module path and capture their outputs with forward hooks in one pass.

Every captured output is read as a ``[B, U, H, W]`` map of U units (``read_map``):
- ``[B, C, H, W]`` (convolutions) as it is;
- ``[B, H, W, C]`` (Swin stages, channels-last blocks) moved to ``[B, C, H, W]``, when the
  module's last computing leaf is a LayerNorm or Linear acting on that last dimension;
- ``[B, N, C]`` tokens (ViT blocks, batch first) as an ``H x W`` grid of C units, where the
  leading ``N - H*W`` tokens (class, distillation and register tokens: at most
  ``MAX_EXTRA_TOKENS``) are dropped and ``H = W``; tokens that are not a square grid need the
  grid stated (``grid=(H, W)``, ``--grid HxW``), which then reads every token layer of the run;
Pooled vectors (``[B, U]`` from a linear, flatten or pooling layer, and the ``[B, U, 1, 1]`` of a
global pool) have no space to compare with a segmentation and are refused, as is anything else,
with a ``LayerError`` that says which layers can be read.
"""

from __future__ import annotations

import contextlib
import difflib
import math
from collections.abc import Iterable

import torch
from torch import nn

from .errors import EngineError, LayerError


def layer_names(model: nn.Module) -> list[str]:
    """Every addressable module path of ``model`` (``layer4``, ``layer4.1.conv2``, ...)."""
    return [name for name, _ in model.named_modules() if name]


def resolve_layers(model: nn.Module, names: Iterable[str]) -> dict[str, nn.Module]:
    """Map each requested module path to its module; unknown names raise ``LayerError``."""
    modules = dict(model.named_modules())
    modules.pop("", None)
    out: dict[str, nn.Module] = {}
    for raw in names:
        name = raw.strip()
        if name in modules:
            out[name] = modules[name]
            continue
        close = difflib.get_close_matches(name, list(modules), n=5, cutoff=0.5)
        top_level = [n for n in modules if "." not in n]
        hint = f"close names: {', '.join(close)}" if close else "no close name"
        raise LayerError(
            f"layer '{name}' is not in the model ({hint}); top-level layers are "
            f"{', '.join(top_level[:20])}. Use a module path such as 'layer4' or 'features.10'."
        )
    if not out:
        raise LayerError("no layer given: name at least one layer to dissect, e.g. --layers layer4")
    return out


MAX_EXTRA_TOKENS = 8  # class + distillation + register tokens in front of a ViT's patch tokens
# Leaves that do not change the layout of what passes through them.
_TRANSPARENT = (nn.Dropout, nn.Identity, nn.ReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Sigmoid, nn.Tanh, nn.ReLU6)


def channels_last_width(module: nn.Module) -> int | None:
    """C when the module's output is ``[..., C]`` channels-last (its last computing leaf is a
    LayerNorm or Linear over C features), else None (channels first)."""
    leaves = [m for m in module.modules() if not list(m.children())]
    for leaf in reversed(leaves):
        if isinstance(leaf, _TRANSPARENT) or type(leaf).__name__ == "StochasticDepth":
            continue
        if type(leaf).__name__ == "Permute":
            dims = list(getattr(leaf, "dims", []))
            return -1 if dims == [0, 2, 3, 1] else None  # -1: channels last, width read from the output
        if isinstance(leaf, nn.LayerNorm) and not type(leaf).__name__.endswith("2d"):
            return int(leaf.normalized_shape[-1])
        if isinstance(leaf, nn.Linear):
            return int(leaf.out_features)
        return None
    return None


def global_pool(module: nn.Module) -> bool:
    """Whether the module pools each channel over the whole image (``AdaptiveAvgPool2d(1)``, ...)."""
    if not isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return False
    size = module.output_size
    return all(s == 1 for s in size) if isinstance(size, tuple) else size == 1


def parse_grid(text: str | None) -> tuple[int, int] | None:
    """``"14x20"`` -> ``(14, 20)`` (height x width of a token layer's grid); empty -> None."""
    if not text or not str(text).strip():
        return None
    parts = str(text).strip().lower().replace(" ", "").split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise EngineError(f"a token grid is written HEIGHTxWIDTH in tokens, e.g. 14x20; got '{text}'")
    return int(parts[0]), int(parts[1])


def token_grid(tokens: int) -> tuple[int, int] | None:
    """(extra tokens, side) with ``tokens = extra + side**2`` and the fewest extra tokens."""
    for extra in range(MAX_EXTRA_TOKENS + 1):
        side = math.isqrt(max(tokens - extra, 0))
        if side > 0 and side * side == tokens - extra:
            return extra, side
    return None


def _pooled(name: str, units: int) -> LayerError:
    return LayerError(
        f"layer '{name}' outputs a pooled vector of {units} units with no height or width, so there is no map "
        "to compare with a segmentation; choose an earlier layer with a spatial map (e.g. the last convolutional "
        "stage before the global pool, such as 'layer4' or 'features')"
    )


def _read_tokens(name: str, output: torch.Tensor, grid: tuple[int, int] | None) -> tuple[torch.Tensor, str]:
    batch, tokens, units = output.shape
    if grid is not None:
        h, w = grid
        extra = tokens - h * w
        if not 0 <= extra <= MAX_EXTRA_TOKENS:
            raise LayerError(
                f"layer '{name}' outputs {tokens} tokens, which do not fit the stated {h}x{w} grid ({h * w} tokens "
                f"after up to {MAX_EXTRA_TOKENS} class/register tokens); state the grid its patch tokens form"
            )
        stated = " (stated grid)"
    else:
        found = token_grid(tokens)
        if found is None:
            raise LayerError(
                f"layer '{name}' outputs {tokens} tokens of {units} features, which are not a square grid "
                f"after up to {MAX_EXTRA_TOKENS} class/register tokens; state the grid its patch tokens form "
                "(--grid HxW, e.g. 14x20) or choose a convolutional layer"
            )
        extra, side = found
        h, w, stated = side, side, ""
    maps = output[:, extra:, :].transpose(1, 2).reshape(batch, units, h, w).contiguous()
    dropped = f", first {extra} token(s) (class/register) dropped" if extra else ""
    return maps, f"tokens [{tokens}, {units}] read as a {h}x{w} map{stated} of {units} units{dropped}"


def read_map(name: str, output, channels_last: int | None = None, *, pooled: bool = False,
             grid: tuple[int, int] | None = None) -> tuple[torch.Tensor, str]:
    """The layer's output as ``[B, U, H, W]`` and one line on how it was read (see the module doc).

    ``pooled``: the module is a global pool (``global_pool``), whose ``[B, U, 1, 1]`` is a vector.
    ``grid``: the stated (height, width) of token layers."""
    if isinstance(output, (tuple, list)) and output:
        output = output[0]
    if not isinstance(output, torch.Tensor):
        raise LayerError(f"layer '{name}' does not output a tensor; choose a layer that outputs feature maps or tokens")
    shape = tuple(output.shape)
    if output.dim() == 2:  # a linear, flatten or pooled layer: units without space
        raise _pooled(name, shape[1])
    if output.dim() == 3:
        return _read_tokens(name, output, grid)
    if output.dim() == 4:
        if channels_last is not None and (channels_last == -1 or channels_last == shape[3]):
            maps = output.permute(0, 3, 1, 2).contiguous()
            reading = f"channels-last [{shape[1]}, {shape[2]}, {shape[3]}] read as a {shape[1]}x{shape[2]} map"
            return maps, f"{reading} of {shape[3]} units"
        if pooled and shape[2] * shape[3] == 1:
            raise _pooled(name, shape[1])
        return output, f"map of {shape[1]} units at {shape[2]}x{shape[3]}"
    raise LayerError(
        f"layer '{name}' outputs shape {shape}; dissection reads [batch, units, height, width] maps, "
        "[batch, height, width, units] maps or [batch, tokens, units] patch tokens: choose such a layer"
    )


class _StopForward(Exception):
    """Raised inside a hook once every wanted layer has its output, to skip the rest."""


class LayerCapture:
    """Context manager: hooks on several layers; ``outputs`` fills during each forward pass.

    ``run(x)`` runs the model and returns ``{layer: [B, U, H, W] tensor}`` (``read_map``; ``grid``
    is the stated grid of token layers). With
    ``stop_early`` the pass stops right after the last captured layer (the later layers'
    work is not needed for dissection).
    """

    def __init__(self, model: nn.Module, names: Iterable[str], *, stop_early: bool = True,
                 grid: tuple[int, int] | None = None) -> None:
        self.model = model
        self.grid = grid
        self.modules = resolve_layers(model, names)
        self.stop_early = stop_early
        self.outputs: dict[str, torch.Tensor] = {}
        self.readings: dict[str, str] = {}  # layer -> how its output was read as maps (read_map)
        self._channels_last = {name: channels_last_width(module) for name, module in self.modules.items()}
        self._pooled = {name: global_pool(module) for name, module in self.modules.items()}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            output, self.readings[name] = read_map(name, output, self._channels_last[name],
                                                   pooled=self._pooled[name], grid=self.grid)
            self.outputs[name] = output.detach()
            if self.stop_early and len(self.outputs) == len(self.modules):
                raise _StopForward

        return hook

    def __enter__(self) -> LayerCapture:
        for name, module in self.modules.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def run(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.run_with(lambda: self.model(images))

    def run_with(self, forward) -> dict[str, torch.Tensor]:
        """``run`` for any call that runs the model (e.g. ``torch.func.functional_call``)."""
        self.outputs = {}
        with contextlib.suppress(_StopForward):
            forward()
        missing = [name for name in self.modules if name not in self.outputs]
        if missing:
            raise LayerError(
                f"layer(s) {', '.join(missing)} never ran during the forward pass; choose layers "
                "the model uses in forward()"
            )
        return dict(self.outputs)
