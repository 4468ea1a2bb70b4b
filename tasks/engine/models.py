"""Networks to dissect: any catalogue architecture (catalogue.py), MixtureNet, exported programs,
and checkpoint loading.

`load_model` accepts a state_dict file or a ``{'state_dict': ...}`` dict (Places365
style), strips DataParallel's ``module.`` prefixes and infers the number of classes from
the checkpoint's last layer. Whole pickled models run code when loaded, so they are only
read with ``unsafe_pickle=True``; everything else goes through ``weights_only`` loading.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import catalogue
from .errors import CheckpointError, EngineError


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def _conv_block(inputs: int, units: int, stride: int = 1, batchnorm: bool = True) -> nn.Sequential:
    if batchnorm:
        return nn.Sequential(
            nn.Conv2d(inputs, units, 5, stride=stride, padding=2, bias=False), nn.BatchNorm2d(units), nn.ReLU()
        )
    return nn.Sequential(nn.Conv2d(inputs, units, 5, stride=stride, padding=2), nn.ReLU())


# The two networks of the mixture experiment; MixtureNet(design=...) builds either.
DESIGNS = ("mixturenet", "seed")


class MixtureNet(nn.Module):
    """The small network of the mixture-of-digits experiment (the seed's controlled experiment).

    design "mixturenet" (ours): conv1 (10 units, stride 2) -> max pool -> conv2 (20) ->
    conv3 (10 * width) -> global average pooling -> [dropout] -> linear to classes; every
    conv is followed by BatchNorm. On a 64 px canvas conv2 and conv3 work at 16 x 16.

    design "seed" (the seed's network as published: conv 10 - 20 - 10 units, GAP, softmax):
    conv1 (10) -> max pool -> conv2 (20) -> max pool -> conv3 (10 * width) -> GAP ->
    [dropout] -> linear; no BatchNorm, no strided conv, convs with biases. The seed names
    unit counts only; the two 2x2 max pools are our reading, because without them conv3's
    receptive field (13 px) could not hold a 28 px digit. With them it is 32 px and conv3
    also works at 16 x 16 on a 64 px canvas.

    `conv1`..`conv3` are Sequential(conv, [BatchNorm,] ReLU) in both designs, so a hook on
    them sees the post-ReLU maps we dissect and every module name is shared. Dropout acts
    on conv3's pooled units (one number per unit), i.e. it drops units.

    Why our design has BatchNorm and a strided conv1: with the trainer's Adam at lr 1e-2,
    the plain network sat near chance (7% val after 4 epochs on 20k images); the strided
    conv1 makes an epoch ~3x cheaper than full-resolution conv1/conv2 and learned at least
    as well (77% vs 69% val after 6 epochs on 5k images). The seed design trains with its
    own recipe (train.RECIPES).
    """

    def __init__(self, num_classes: int = 45, width: float = 1.0, dropout: float = 0.0,
                 design: str = "mixturenet") -> None:
        super().__init__()
        if design not in DESIGNS:
            raise EngineError(f"Unknown MixtureNet design {design!r}; choose one of {', '.join(DESIGNS)}.")
        units3 = max(1, round(10 * width))
        norm = design == "mixturenet"
        self.config = {"num_classes": num_classes, "width": width, "dropout": dropout, "design": design}
        self.conv1 = _conv_block(3, 10, stride=2 if norm else 1, batchnorm=norm)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = _conv_block(10, 20, batchnorm=norm)
        # ours: no pooling here (the strided conv1 already halved); the name stays for code that walks the stages
        self.pool2 = nn.Identity() if norm else nn.MaxPool2d(2)
        self.conv3 = _conv_block(20, units3, batchnorm=norm)
        self.pool3 = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(units3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.conv1(x))
        x = self.conv3(self.pool2(self.conv2(x)))
        return self.fc(self.dropout(self.pool3(x).flatten(1)))


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision.models as tvm

        if name == "googlenet":
            # Auxiliary heads only matter in training; init_weights=True keeps torchvision quiet.
            return tvm.googlenet(weights=None, num_classes=num_classes, aux_logits=False, init_weights=True)
        return getattr(tvm, name)(weights=None, num_classes=num_classes)

    return build


# name -> builder(num_classes); default class counts are in DEFAULT_CLASSES.
ARCHITECTURES: dict[str, Callable[[int], nn.Module]] = {
    name: _torchvision(name) for name in ("alexnet", "vgg16", "resnet18", "resnet50", "densenet161", "googlenet")
}
ARCHITECTURES["mixturenet"] = lambda num_classes: MixtureNet(num_classes=num_classes)
DEFAULT_CLASSES = {name: 1000 for name in ARCHITECTURES} | {"mixturenet": 45}

# The layer whose weight rows are the classes, per architecture.
CLASSIFIER = {
    "alexnet": "classifier.6",
    "vgg16": "classifier.6",
    "resnet18": "fc",
    "resnet50": "fc",
    "densenet161": "classifier",
    "googlenet": "fc",
    "mixturenet": "fc",
}

# Old DenseNet checkpoints (Places365, torchvision < 0.3) spell `norm1` as `norm.1`.
_OLD_DENSENET_KEY = re.compile(
    r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")


def _clean_state_dict(arch: str, state: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    cleaned: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        if arch == "densenet161":
            key = _OLD_DENSENET_KEY.sub(lambda m: m.group(1) + m.group(2), key)
        if (arch == "googlenet" and key.startswith(("aux1.", "aux2."))) or (
            arch == "inception_v3" and key.startswith("AuxLogits.")
        ):
            continue  # auxiliary training heads: not part of the eval network we build
        cleaned[key] = value
    return cleaned


def read_checkpoint(path: Path, unsafe_pickle: bool) -> Any:
    if not path.is_file():
        raise CheckpointError(f"The checkpoint {path} does not exist.")
    if not _looks_like_torch_file(path):
        # Checked first: torch's error for arbitrary bytes mentions weights_only too, which would
        # wrongly advise loading the file unsafely.
        raise CheckpointError(
            f"{path} is not a PyTorch checkpoint (neither torch.save's zip format nor a pickle): "
            "save the weights with torch.save(model.state_dict(), FILE)."
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=not unsafe_pickle)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ...
        if not unsafe_pickle and "weights_only" in str(exc):
            raise CheckpointError(
                f"The checkpoint {path} holds pickled Python objects (e.g. a whole model), which can run "
                "code when loaded. Save its state_dict instead, or, only if you trust the file, load it "
                "with unsafe_pickle=True (command line: --unsafe-pickle)."
            ) from exc
        raise CheckpointError(f"Cannot read the checkpoint {path}: {exc}") from exc


def _looks_like_torch_file(path: Path) -> bool:
    """torch.save writes a zip archive (since 1.6) or, in the legacy format, a pickle (0x80 first)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as fh:
        return fh.read(1) == b"\x80"


def seeded(builder: Callable[[], nn.Module], seed: int = 0) -> nn.Module:
    """Random weights that are the same every time (tests, demos), without touching global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder()


def load_model(
    arch: str,
    checkpoint: str | Path | None,
    *,
    num_classes: int | None = None,
    unsafe_pickle: bool = False,
    image_size: int | None = None,
) -> nn.Module:
    """The network `arch` with the checkpoint's weights, in eval mode, on the CPU.

    `arch` is MixtureNet, any catalogue name (catalogue.py: torchvision's classification models,
    ``timm:<name>``) or ``program`` (the checkpoint is a torch.export ``.pt2`` file).
    checkpoint=None gives seeded random weights; for ``timm:<name>``, checkpoint="pretrained"
    downloads timm's named weight set (refused at once when offline). Raises CheckpointError when the file
    cannot be read safely or its keys/shapes do not fit (naming missing/unexpected keys).
    The model gets a `class_names` attribute when the checkpoint stores one. `image_size`
    builds a fixed-size network (ViT, MaxViT) for that input size (default: its weights' size).
    """
    if arch == catalogue.PROGRAM:
        from .program import load_program

        if checkpoint is None:
            raise CheckpointError(
                "--model program needs the exported program: --checkpoint FILE.pt2 (torch.export.save)."
            )
        return load_program(checkpoint)
    if arch.startswith(catalogue.TIMM_PREFIX) and str(checkpoint) == "pretrained":
        from .timm_models import timm_pretrained

        return timm_pretrained(arch[len(catalogue.TIMM_PREFIX):], image_size=image_size)
    build = _builder(arch, image_size)
    if checkpoint is None:
        n = num_classes or DEFAULT_CLASSES.get(arch, 1000)
        return seeded(lambda: build(n)).eval()

    path = Path(checkpoint)
    loaded = read_checkpoint(path, unsafe_pickle)
    if isinstance(loaded, nn.Module):  # only reachable with unsafe_pickle=True
        return loaded.eval()
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"The checkpoint {path} holds a {type(loaded).__name__}, not a state_dict.")
    meta: Mapping[str, Any] = {}
    state = loaded
    if isinstance(loaded.get("state_dict"), Mapping):
        meta, state = loaded, loaded["state_dict"]
    state = _clean_state_dict(arch, state)

    weight_key = f"{CLASSIFIER[arch]}.weight" if arch in CLASSIFIER else _last_weight_key(state)
    found = state[weight_key].shape[0] if weight_key in state and hasattr(state[weight_key], "shape") else None
    if num_classes is not None and found is not None and num_classes != found:
        raise CheckpointError(
            f"The checkpoint {path} has {found} classes ({weight_key}) but num_classes={num_classes} was asked; "
            "leave num_classes out to use the checkpoint's."
        )
    n = found or num_classes or DEFAULT_CLASSES.get(arch, 1000)
    model: nn.Module
    if arch == "mixturenet":
        config = dict(meta.get("config") or {})
        if "width" not in config and "conv3.0.weight" in state:
            config["width"] = state["conv3.0.weight"].shape[0] / 10
        if "design" not in config:  # a bare state_dict: only the seed design's convs have biases (no BatchNorm)
            config["design"] = "seed" if "conv1.0.bias" in state else "mixturenet"
        model = MixtureNet(num_classes=n, width=config.get("width", 1.0), dropout=config.get("dropout", 0.0),
                           design=config["design"])
    else:
        model = build(n)
    load_checked(model, state, path, arch)
    if meta.get("class_names"):
        model.class_names = list(meta["class_names"])  # type: ignore[assignment]  # a plain attribute, not a tensor
    return model.eval()


def _builder(arch: str, image_size: int | None) -> Callable[[int], nn.Module]:
    if arch in ARCHITECTURES and image_size is None:
        return ARCHITECTURES[arch]
    if arch == "mixturenet":
        return ARCHITECTURES[arch]
    return catalogue.builder(arch, image_size)


def _last_weight_key(state: Mapping[str, Any]) -> str:
    """The classifier of a catalogue network is its last weight matrix (or 1x1 conv, SqueezeNet):
    its rows are the classes."""
    keys = [k for k, v in state.items() if k.endswith("weight") and getattr(v, "dim", lambda: 0)() >= 2]
    return keys[-1] if keys else ""


def load_checked(model: nn.Module, state: dict[str, torch.Tensor], path: Path, arch: str) -> None:
    expected = model.state_dict()
    # BatchNorm's num_batches_tracked is missing from checkpoints saved before PyTorch 0.4.1
    # and does not affect eval outputs, so its absence is tolerated.
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong_shape:
        parts = []
        for title, keys in (("missing "
                             "keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong_shape)):
            if keys:
                more = f" (+{len(keys) - 8} more)" if len(keys) > 8 else ""
                parts.append(f"{title}: {', '.join(keys[:8])}{more}")
        raise CheckpointError(
            f"The checkpoint {path} does not fit architecture {arch!r}: " + "; ".join(parts)
            + ". Check that the architecture matches the checkpoint."
        )
    model.load_state_dict(state, strict=False)
