"""The layer picker: a registered network's layers from a shape probe, and the plan of a choice.

No image is read: the network is built on PyTorch's meta device where it can be (shapes only),
an exported program is read from its stored file, and a dataset contributes its index (image
count and sizes) to the plan's estimate of time, disk and memory.
"""
from __future__ import annotations

from django.db.models import QuerySet

from .errors import DissectionError
from .generators import GENERATOR_ARCHITECTURES
from .models import Network, ProbeDataset


def _probe_model(network: Network):
    return _architecture_model(network.architecture, checkpoint=network.checkpoint.path if network.checkpoint else None,
                               num_classes=network.num_classes, input_size=network.input_size)


def _architecture_model(architecture: str, *, checkpoint: str | None = None, num_classes: int | None = None,
                        input_size: int | None = None):
    import torch

    from tasks.engine.models import load_model

    if architecture == Network.Architecture.PROGRAM:
        return load_model(architecture, checkpoint)
    try:
        with torch.device("meta"):
            return load_model(architecture, None, num_classes=num_classes, image_size=input_size)
    except NotImplementedError:  # a builder that computes with tensors (RegNet): build it for real
        return load_model(architecture, None, num_classes=num_classes, image_size=input_size)


def _default_size(architecture: str) -> int:
    """The architecture's own input size (its weights'), MixtureNet's 64 px canvas, else 224."""
    from tasks.engine.catalogue import input_spec, is_known

    if is_known(architecture) and architecture != Network.Architecture.PROGRAM:
        return input_spec(architecture).size
    return 64 if architecture == Network.Architecture.MIXTURENET else 224


def architecture_layer_table(*, architecture: str, input_size: int | None = None) -> dict:
    """{"architecture", "image_size", "layers": rows} of an architecture not registered yet (registration
    form): built on the meta device, no weights and no image. A program's layers need its file, and a
    generator's are listed by its own dissection: both are refused with what to do."""
    from tasks.engine.errors import EngineError
    from tasks.engine.layers import layer_table

    architecture = (architecture or "").strip()
    if not architecture:
        raise DissectionError("Name an architecture, e.g. resnet50, convnext_tiny or vit_b_16.")
    if architecture == Network.Architecture.PROGRAM:
        raise DissectionError("A program's layers are read from its .pt2 file: register it, then its layers are "
                              "listed on the job page.")
    if architecture in GENERATOR_ARCHITECTURES:
        raise DissectionError("A generator's layers are listed by its own dissection (GAN Dissection), not by this "
                              "picker.")
    if input_size is not None and not 8 <= input_size <= 4096:
        raise DissectionError("input_size must be between 8 and 4096 pixels.")
    try:
        model = _architecture_model(architecture, input_size=input_size)
        size = getattr(model, "fixed_input_size", None) or input_size or _default_size(architecture)
        rows = [row.to_json() for row in layer_table(model, size)]
    except EngineError as exc:
        raise DissectionError(str(exc)) from None
    return {"architecture": architecture, "image_size": size, "layers": rows}


def _image_size(network: Network, engine_dataset) -> int:
    """The size the dissection will feed: the network's own, else the dataset's first image's, else the
    architecture's default (MixtureNet: its 64 px canvas)."""

    if network.input_size:
        return network.input_size
    if engine_dataset is not None and len(engine_dataset):
        return int(engine_dataset.size_key(0)[0])
    return _default_size(network.architecture)


def network_layer_table(
    *, network: Network, dataset: ProbeDataset | None = None, layers: list[str] | None = None, token_grid: str = ""
) -> dict:
    """{"image_size", "layers": rows, "plan": ... or None}; the plan (with estimated seconds) for
    `layers` on `dataset` when both are given; token layers read as `token_grid` ("HxW") when stated.
    Bad names or unreadable layers raise DissectionError."""
    from tasks.engine.capture import parse_grid
    from tasks.engine.errors import EngineError
    from tasks.engine.layers import estimated_seconds, forward_flops, layer_table

    if network.architecture in GENERATOR_ARCHITECTURES:
        raise DissectionError(
            "A generator's layers are listed by its own dissection (GAN Dissection), not by this picker."
        )
    try:
        model = _probe_model(network)
        engine_dataset = None
        if dataset is not None:
            from tasks.engine.datasets import open_dataset

            if dataset.kind == ProbeDataset.Kind.SEGMENTER:
                raise DissectionError("A segmenter dataset is for generators; choose an image dataset.")
            engine_dataset = open_dataset(dataset.engine_spec, image_size=network.input_size or dataset.image_size)
        size = getattr(model, "fixed_input_size", None) or _image_size(network, engine_dataset)
        grid = parse_grid(token_grid)
        rows = [row.to_json() for row in layer_table(model, size, grid=grid)]
        result: dict = {"image_size": size, "layers": rows, "plan": None}
        if engine_dataset is not None and layers:
            from tasks.engine.dissect import DissectOptions, plan_dissection

            plan = plan_dissection(model, engine_dataset, DissectOptions(layers=layers, progress_bar=False,
                                                                                 grid=grid))
            flops = forward_flops(model, size)
            result["plan"] = {
                "lines": plan.lines(),
                "images": plan.images,
                "passes": plan.passes,
                "disk_bytes": plan.disk_bytes,
                "memory_bytes": plan.memory_bytes,
                "flops_per_image": flops,
                "estimated_seconds": {
                    d: estimated_seconds(flops, plan.images, plan.passes, d) for d in ("cpu", "cuda")
                },
            }
    except EngineError as exc:
        raise DissectionError(str(exc)) from None
    return result


def layer_name_problem(architecture: str, names: list[str], *, checkpoint: str | None = None,
                       input_size: int | None = None, token_grid: str = "") -> str | None:
    """Why `names` cannot be dissected in `architecture` (None when they all can, or when it cannot be told):
    a name that is not a layer, or a layer whose output is not a map (a pooled vector, tokens that
    are no square grid), in the engine's own words with the fix.

    A catalogue model is built on PyTorch's meta device: shapes without weights or memory. An
    exported program is read from its stored file (`checkpoint`). `token_grid` ("HxW") reads token
    layers as that grid."""
    from tasks.engine.capture import parse_grid, resolve_layers
    from tasks.engine.errors import EngineError, LayerError
    from tasks.engine.layers import layer_table

    if not names or architecture in GENERATOR_ARCHITECTURES:
        return None
    if architecture == Network.Architecture.PROGRAM and not checkpoint:
        return None
    try:
        model = _architecture_model(architecture, checkpoint=checkpoint, input_size=input_size)
    except EngineError as exc:
        return str(exc)
    except Exception:  # noqa: BLE001 - the runner's own check still stands behind this one
        return None
    try:
        resolve_layers(model, names)
    except LayerError as exc:
        return f"{exc}"[0].upper() + f"{exc}"[1:]
    size = getattr(model, "fixed_input_size", None) or input_size or _default_size(architecture)
    try:
        rows = {row.name: row for row in layer_table(model, size, grid=parse_grid(token_grid))}
    except Exception:  # noqa: BLE001 - a model the probe cannot run: the runner's own check stands behind this one
        return None
    for name in names:
        row = rows.get(name)
        if row is not None and row.units is None:
            reason = row.reading.removeprefix("not readable: ")
            return reason[0].upper() + reason[1:]
    return None


def picker_context(params, *, networks: QuerySet[Network], datasets: QuerySet[ProbeDataset]) -> dict | None:
    """What the job page's picker shows for the network (and dataset, layers) in `params`
    (the page's GET or POST data): the table, the plan, or the refusal's message. Only `networks`
    and `datasets` (those the user may use) are looked up: another project's id shows nothing."""
    network_id, dataset_id = str(params.get("network") or ""), str(params.get("dataset") or "")
    network = networks.filter(pk=network_id).first() if network_id.isdigit() and len(network_id) < 19 else None
    if network is None or network.architecture in GENERATOR_ARCHITECTURES:
        return None
    dataset = datasets.filter(pk=dataset_id).first() if dataset_id.isdigit() and len(dataset_id) < 19 else None
    names = [x for x in str(params.get("layers") or "").replace(",", " ").split() if x]
    grid = str(params.get("token_grid") or "")[:16]
    try:
        table = network_layer_table(network=network, dataset=dataset, layers=names, token_grid=grid)
    except DissectionError as exc:
        try:
            table = network_layer_table(network=network) | {"problem": str(exc)}
        except DissectionError as again:
            return {"network": network, "problem": str(again), "layers": []}
    return {"network": network, "dataset": dataset, **table}
