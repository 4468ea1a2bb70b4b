"""Find layers by module path and capture their outputs with forward hooks in one pass."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import torch
from torch import nn

from .errors import LayerError
import contextlib


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


class _StopForward(Exception):
    """Raised inside a hook once every wanted layer has its output, to skip the rest."""


class LayerCapture:
    """Context manager: hooks on several layers; ``outputs`` fills during each forward pass.

    ``run(x)`` runs the model and returns ``{layer: [B, U, H, W] tensor}``. With
    ``stop_early`` the pass stops right after the last captured layer (the later layers'
    work is not needed for dissection).
    """

    def __init__(self, model: nn.Module, names: Iterable[str], *, stop_early: bool = True) -> None:
        self.model = model
        self.modules = resolve_layers(model, names)
        self.stop_early = stop_early
        self.outputs: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def _hook(self, name: str):
        def hook(module: nn.Module, inputs, output) -> None:
            if isinstance(output, (tuple, list)):
                output = output[0]
            if not isinstance(output, torch.Tensor):
                raise LayerError(f"layer '{name}' does not output a tensor; choose a convolutional layer")
            if output.dim() == 2:  # a linear layer: units without space
                output = output[:, :, None, None]
            if output.dim() != 4:
                raise LayerError(
                    f"layer '{name}' outputs shape {tuple(output.shape)}; dissection needs "
                    "[batch, units, height, width] feature maps"
                )
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
