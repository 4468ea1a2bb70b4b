"""Custom architectures without pickle: a torch.export program (``.pt2``) as the network to dissect.

A program file holds the graph and the weights, not Python code, so loading it runs nothing of
the user's. ``torch.export.unflatten`` gives back the module hierarchy of the exported model, so
its layers are chosen by the same module paths as in the user's own ``nn.Module`` and hooked
like any other. The program must take one image batch ``[B, 3, H, W]`` with a dynamic batch
dimension (the dissection's batches vary in size, the last one is smaller). A program exported
with fixed ``H, W`` takes only that image size; the dissection resizes images to it.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import CheckpointError, EngineError

EXPORT_HOWTO = (
    "export it with a dynamic batch dimension: program = torch.export.export(model.eval(), "
    "(torch.randn(2, 3, 224, 224),), dynamic_shapes={'x': {0: torch.export.Dim('batch')}}) "
    "(with 'x' the name of forward's image argument), then torch.export.save(program, 'net.pt2')"
)


def load_program(path: str | Path) -> nn.Module:
    """The program's unflattened module, in eval mode; `fixed_input_size` is set when the program fixes H = W."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"The program {path} does not exist.")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a torch.export program (a .pt2 archive); {EXPORT_HOWTO}.")
    with zipfile.ZipFile(path) as archive:
        if any(name.endswith("/constants.pkl") or "/code/__torch__" in name for name in archive.namelist()):
            # A TorchScript module runs its submodules inside its compiled graph, where no Python
            # forward hook can observe them (register_forward_hook is refused on ScriptModules).
            raise CheckpointError(
                f"{path} is a TorchScript archive: its layers cannot be hooked, so it cannot be dissected. "
                f"Export the model with torch.export instead; {EXPORT_HOWTO}."
            )
    import logging

    # torch.export.load logs a long traceback of its own before raising on a foreign archive.
    export_logger = logging.getLogger("torch.export")
    level = export_logger.level
    export_logger.setLevel(logging.CRITICAL)
    try:
        program = torch.export.load(path)
    except Exception as exc:  # noqa: BLE001 - a state_dict zip, a TorchScript archive, another torch's format, ...
        raise CheckpointError(
            f"{path} is not a torch.export program that this PyTorch ({torch.__version__}) can load "
            f"({type(exc).__name__}); {EXPORT_HOWTO}. A state_dict is registered with its architecture's name instead."
        ) from None
    finally:
        export_logger.setLevel(level)
    shape = _image_input_shape(program, path)
    module = torch.export.unflatten(program)
    # An attribute of our own on the module (nn.Module's __setattr__ is typed for tensors and modules only).
    module.fixed_input_size = shape[2] if isinstance(shape[2], int) and shape[2] == shape[3] else None  # type: ignore[assignment]
    module.register_forward_pre_hook(_input_check(shape, path))
    return module.eval()


def _image_input_shape(program, path: Path) -> list:
    """The program's one user input as [B, 3, H, W] (ints where fixed, None where dynamic)."""
    user_inputs = list(program.graph_signature.user_inputs)
    values = {n.name: n.meta.get("val") for n in program.graph.nodes if n.op == "placeholder"}
    if len(user_inputs) != 1 or not isinstance(values.get(user_inputs[0]), torch.Tensor):
        raise CheckpointError(
            f"The program {path} takes {len(user_inputs)} inputs ({', '.join(map(str, user_inputs)) or 'none'}); "
            f"dissection feeds it one image batch [B, 3, H, W]: export a model whose forward takes only the images."
        )
    value = values[user_inputs[0]]
    shape = [d if isinstance(d, int) else None for d in value.shape]
    if len(shape) != 4 or shape[1] != 3 or not value.dtype.is_floating_point:
        raise CheckpointError(
            f"The program {path} takes a {value.dtype} tensor of shape {list(value.shape)}, not an image batch "
            f"[B, 3, H, W] of floats: export the model with images as its input."
        )
    if shape[0] is not None:
        raise CheckpointError(f"The program {path} was exported with a fixed batch size of {shape[0]}; {EXPORT_HOWTO}.")
    return shape


def _input_check(shape: list, path: Path):
    def check(_module, args) -> None:
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return
        fixed_h, fixed_w = shape[2], shape[3]
        if (fixed_h is not None and x.shape[2] != fixed_h) or (fixed_w is not None and x.shape[3] != fixed_w):
            raise EngineError(
                f"The program {path.name} was exported for {fixed_h}x{fixed_w} px images but gets "
                f"{x.shape[2]}x{x.shape[3]} px: resize the images to its size (--image-size {fixed_h}; on the "
                "platform: the network's input size), or export it with dynamic height and width."
            )

    return check
