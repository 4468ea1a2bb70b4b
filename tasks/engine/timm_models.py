"""timm architectures (``timm:<name>``), when the optional ``timm`` package is installed.

Weights come from a local state_dict file, checked like any checkpoint. Only ``--checkpoint
pretrained`` downloads, the named weight set (``timm:resnet50.a1_in1k``) or timm's default for
the architecture, and only after a short check that the Hugging Face Hub answers: offline, that
is an error naming the way to bring the file over, never a hang on a network timeout.
"""

from __future__ import annotations

import difflib
import socket
from collections.abc import Callable

from torch import nn

from .errors import CheckpointError, EngineError
from .input_spec import InputSpec

PRETRAINED = "pretrained"  # the --checkpoint value that asks timm to download the weights
HUB_HOST = "huggingface.co"
HUB_TIMEOUT_S = 3.0
TIMM_VERSION = "1.0.29"  # the version requirements.txt pins and CI tests


def _timm():
    try:
        import timm
    except ImportError:
        raise EngineError(
            f"timm architectures need the optional timm package: pip install timm=={TIMM_VERSION} "
            "(or choose a torchvision architecture, or export your model as a torch.export program)."
        ) from None
    return timm


def check_timm_name(name: str) -> None:
    timm = _timm()
    if not name or not timm.is_model(name):
        arch = name.split(".")[0]
        close = difflib.get_close_matches(arch, timm.list_models(), n=4, cutoff=0.6)
        hint = f" (close names: {', '.join(close)})" if close else ""
        raise EngineError(
            f"timm has no architecture {name!r}{hint}; timm.list_models('pattern*') lists them. "
            "Write it as --model timm:<name>, e.g. timm:resnet50 or timm:vit_small_patch16_224."
        )


def _pretrained_cfg(name: str) -> dict:
    timm = _timm()
    cfg = timm.models.get_pretrained_cfg(name) if name.count(".") else None
    if cfg is None:
        arch = name.split(".")[0]
        cfg = timm.models.get_pretrained_cfg(arch)
    return cfg.to_dict() if cfg is not None and hasattr(cfg, "to_dict") else dict(cfg or {})


def timm_input_spec(name: str):

    check_timm_name(name)
    cfg = _pretrained_cfg(name)
    size = int((cfg.get("input_size") or (3, 224, 224))[-1])
    mean = tuple(float(v) for v in cfg.get("mean") or (0.485, 0.456, 0.406))
    std = tuple(float(v) for v in cfg.get("std") or (0.229, 0.224, 0.225))
    return InputSpec(size, mean, std, fixed=bool(cfg.get("fixed_input_size")))  # type: ignore[arg-type]


def timm_builder(name: str, image_size: int | None = None) -> Callable[[int], nn.Module]:
    check_timm_name(name)
    fixed = timm_input_spec(name).fixed

    def build(num_classes: int) -> nn.Module:
        kwargs = {"img_size": image_size} if fixed and image_size is not None else {}
        return _timm().create_model(name, pretrained=False, num_classes=num_classes, **kwargs)

    return build


def hub_reachable(host: str = HUB_HOST, timeout: float = HUB_TIMEOUT_S) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def timm_pretrained(name: str, *, image_size: int | None = None) -> nn.Module:
    """The named weight set, downloaded by timm; refused at once when the Hub cannot be reached."""
    check_timm_name(name)
    if not hub_reachable():
        raise CheckpointError(
            f"Cannot reach {HUB_HOST} to download the weights of timm:{name} (this machine looks offline). "
            f"On a connected machine run timm.create_model({name!r}, pretrained=True) and "
            "torch.save(model.state_dict(), 'weights.pth'), then pass --checkpoint weights.pth."
        )
    fixed = timm_input_spec(name).fixed
    kwargs = {"img_size": image_size} if fixed and image_size is not None else {}
    try:
        return _timm().create_model(name, pretrained=True, **kwargs).eval()
    except Exception as exc:  # noqa: BLE001 - no such weight set, a download cut off, ...
        raise CheckpointError(f"timm could not load the pretrained weights of {name!r}: {exc}") from None
