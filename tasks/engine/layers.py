"""The layer table: every named module of a network with its output shape and how it would be dissected.

Built from one forward pass of a blank image with hooks on every module (on PyTorch's meta
device when the model allows, so no arithmetic and no image read), so a user can choose layers
before any job exists.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.func import functional_call

from .capture import channels_last_width, global_pool, read_map
from .errors import EngineError, LayerError


@dataclass
class LayerRow:
    name: str
    kind: str  # the module's class name
    shape: list[int]  # the output shape without the batch dimension ([] when it is not a tensor)
    units: int | None  # None: the output cannot be read as maps
    map_size: list[int] | None  # [h, w] of each unit's map
    reading: str  # how it is read, or why it cannot be

    def to_json(self) -> dict:
        return asdict(self)


def layer_table(model: nn.Module, image_size: int = 224, *, device: str = "cpu",
                grid: tuple[int, int] | None = None) -> list[LayerRow]:
    """One row per named module, in the order they ran (modules that never ran come last); token
    layers are read with the stated ``grid`` when one is given."""
    model.eval()
    try:
        meta = {k: torch.empty_like(v, device="meta") for k, v in (*model.named_parameters(), *model.named_buffers())}
        return _table(model, image_size, "meta", meta, grid)
    except EngineError:
        raise
    except Exception:  # noqa: BLE001 - an op without a meta kernel: probe with real (blank) data
        return _table(model.to(device), image_size, device, None, grid)


def _table(model: nn.Module, image_size: int, device: str, meta: dict | None,
           grid: tuple[int, int] | None) -> list[LayerRow]:
    modules = [(name, module) for name, module in model.named_modules() if name]
    rows: dict[str, LayerRow] = {}
    handles = []

    def hook_for(name: str, module: nn.Module):
        def hook(_module, _inputs, output) -> None:
            if name in rows:  # a module called twice: the first call's output is the one captured
                return
            raw = output[0] if isinstance(output, (tuple, list)) and output else output
            shape = list(raw.shape[1:]) if isinstance(raw, torch.Tensor) else []
            try:
                maps, how = read_map(name, output, channels_last_width(module), pooled=global_pool(module), grid=grid)
                rows[name] = LayerRow(name, type(module).__name__, shape, int(maps.shape[1]), list(maps.shape[2:]), how)
            except LayerError as exc:
                rows[name] = LayerRow(name, type(module).__name__, shape, None, None, f"not readable: {exc}")

        return hook

    for name, module in modules:
        handles.append(module.register_forward_hook(hook_for(name, module)))
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    try:
        with torch.inference_mode():
            if meta is None:
                model(x)
            else:
                functional_call(model, meta, (x,))
    finally:
        for handle in handles:
            handle.remove()
    never = [LayerRow(name, type(module).__name__, [], None, None, "not readable: never ran in forward()")
             for name, module in modules if name not in rows]
    return list(rows.values()) + never


def table_lines(rows: list[LayerRow], *, readable_only: bool = False) -> list[str]:
    shown = [r for r in rows if r.units is not None or not readable_only]
    width = max((len(r.name) for r in shown), default=5)
    out = [f"{'layer':<{width}}  {'module':<22} {'output':<18} reading"]
    for r in shown:
        shape = "x".join(str(d) for d in r.shape) or "-"
        out.append(f"{r.name:<{width}}  {r.kind[:22]:<22} {shape:<18} {r.reading}")
    return out


# Forward throughput assumed by time estimates: resnet18 at 224 px ran at 39 GFLOP/s on the 2-core
# development CPU; a data-centre GPU sustains tens of TFLOP/s on convolutions in float32.
ASSUMED_FLOPS_PER_SECOND = {"cpu": 4e10, "cuda": 2e13}


def forward_flops(model: nn.Module, image_size: int) -> int | None:
    """Floating-point operations of one image's forward pass, counted on the meta device (None when
    the model cannot run there)."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        meta = {k: torch.empty_like(v, device="meta") for k, v in (*model.named_parameters(), *model.named_buffers())}
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            functional_call(model, meta, (torch.zeros(1, 3, image_size, image_size, device="meta"),))
    except Exception:  # noqa: BLE001 - an op without a meta kernel: no estimate rather than a real forward pass
        return None
    return int(counter.get_total_flops())


def estimated_seconds(flops_per_image: int | None, images: int, passes: int, device: str = "cpu") -> float | None:
    """The forward passes of a plan at the assumed throughput (decoding and counting come on top)."""
    if flops_per_image is None:
        return None
    return flops_per_image * images * passes / ASSUMED_FLOPS_PER_SECOND["cuda" if device.startswith("cuda") else "cpu"]
