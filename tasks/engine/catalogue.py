"""Architectures built by name: torchvision's classification catalogue and, when installed, timm's.

Each name comes with the input its published weights expect (square size, mean, std in 0..1
units), read from torchvision's weight metadata or timm's pretrained config; nothing is
downloaded. Networks whose input size is fixed by their weights (a ViT's position embeddings,
MaxViT's attention partitions) are built for the size the dissection will feed them.
"""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Callable
from functools import cache

from torch import nn

from .errors import EngineError
from .input_spec import InputSpec

TIMM_PREFIX = "timm:"
PROGRAM = "program"  # a torch.export program file stands in for the architecture (see program.py)

# The architectures of the original NetDissect study: their usual checkpoints (Places365, NetDissect's
# own) were trained with NetDissect-Lite's normalisation, so that stays their default.
NETDISSECT_ARCHITECTURES = frozenset({"alexnet", "vgg16", "resnet18", "resnet50", "densenet161", "googlenet"})
NETDISSECT_MEAN = (0.488981, 0.465450, 0.429564)
NETDISSECT_STD = (0.224, 0.224, 0.224)

# Builder keyword that fixes the input size, for the families whose weights fix it.
_SIZE_KEYWORD = {"vit_": "image_size", "maxvit_": "input_size"}


@cache
def torchvision_names() -> tuple[str, ...]:
    import torchvision.models as tvm

    return tuple(tvm.list_models(module=tvm))


def is_known(name: str) -> bool:
    return name in torchvision_names() or name.startswith(TIMM_PREFIX)


def _size_keyword(name: str) -> str | None:
    return next((kw for prefix, kw in _SIZE_KEYWORD.items() if name.startswith(prefix)), None)


def input_spec(name: str) -> InputSpec:
    """The default input of a catalogue architecture (timm: of its default pretrained config)."""
    if name.startswith(TIMM_PREFIX):
        from .timm_models import timm_input_spec

        return timm_input_spec(name[len(TIMM_PREFIX):])
    check_name(name)
    import torchvision.models as tvm

    transform = tvm.get_model_weights(name).DEFAULT.transforms()
    size = int(transform.crop_size[0])
    if name in NETDISSECT_ARCHITECTURES:
        return InputSpec(size, NETDISSECT_MEAN, NETDISSECT_STD, fixed=False)
    mean = tuple(float(v) for v in transform.mean)
    std = tuple(float(v) for v in transform.std)
    return InputSpec(size, mean, std, fixed=_size_keyword(name) is not None)  # type: ignore[arg-type]


def check_name(name: str) -> None:
    if name.startswith(TIMM_PREFIX):
        from .timm_models import check_timm_name

        check_timm_name(name[len(TIMM_PREFIX):])
        return
    if name in torchvision_names():
        return
    close = difflib.get_close_matches(name, [*torchvision_names(), "mixturenet", PROGRAM], n=4, cutoff=0.6)
    hint = f" (close names: {', '.join(close)})" if close else ""
    raise EngineError(
        f"Unknown architecture {name!r}{hint}. Use a torchvision classification model name "
        "(torchvision.models.list_models(module=torchvision.models), e.g. resnet50, convnext_tiny, vit_b_16), "
        "'timm:<name>' with timm installed, 'mixturenet', or 'program' with a torch.export .pt2 file."
    )


def builder(name: str, image_size: int | None = None) -> Callable[[int], nn.Module]:
    """builder(num_classes) for a catalogue architecture; `image_size` sizes fixed-size networks."""
    if name.startswith(TIMM_PREFIX):
        from .timm_models import timm_builder

        return timm_builder(name[len(TIMM_PREFIX):], image_size)
    check_name(name)

    def build(num_classes: int) -> nn.Module:
        import torchvision.models as tvm

        kwargs: dict = {"weights": None, "num_classes": num_classes}
        keyword = _size_keyword(name)
        if keyword is not None and image_size is not None:
            kwargs[keyword] = image_size if keyword == "image_size" else (image_size, image_size)
        if name in ("googlenet", "inception_v3"):
            # Auxiliary heads only matter in training; init_weights=True keeps torchvision quiet.
            kwargs.update(aux_logits=False, init_weights=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return tvm.get_model(name, **kwargs)

    return build
