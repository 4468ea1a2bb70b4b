"""Command line of the engine: ``python -m tasks.engine dissect|layers|plan|mixture make|mixture train|sanity|gan``.

The engine's benchmark is ``python -m benchmarks.engine_bench`` (``make bench``).

Shaped like torchvision's reference scripts: each command is a ``main_*(args)`` and the
parser sits at the bottom. Engine errors print one clear line on stderr and exit with 2.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from .errors import EngineError
from .models import default_device
from .options import add_resource_arguments, default_workers

NETDISSECT_MEAN = "0.488981,0.465450,0.429564"
NETDISSECT_STD = "0.224,0.224,0.224"
GRID_HELP = ("HEIGHTxWIDTH: the grid that token layers' patch tokens form, e.g. 14x20 (needed when the tokens, "
             "less class/register tokens, are not a square grid; it then reads every token layer of the run)")


def _floats(text: str, what: str, count: int = 3) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        raise EngineError(f"--{what} must be {count} comma-separated numbers in 0..1 units, got '{text}'") from None
    if len(values) == 1:
        values = values * count
    if len(values) != count:
        raise EngineError(f"--{what} must be {count} comma-separated numbers in 0..1 units, got '{text}'")
    return values


def _model_input(args: argparse.Namespace) -> tuple[list[float], list[float], int | None]:
    """mean, std and image size: as given, else the architecture's (a fixed-size network needs its size)."""
    from .catalogue import PROGRAM, input_spec, is_known

    mean, std, size = args.mean, args.std, args.image_size
    if is_known(args.model) and args.model != PROGRAM:
        spec = input_spec(args.model)
        mean = mean or ",".join(str(v) for v in spec.mean)
        std = std or ",".join(str(v) for v in spec.std)
        if size is None and spec.fixed:
            size = spec.size
    return _floats(mean or NETDISSECT_MEAN, "mean"), _floats(std or NETDISSECT_STD, "std"), size


def main_dissect(args: argparse.Namespace) -> int:
    from .capture import parse_grid
    from .datasets import open_dataset
    from .dissect import DissectOptions, dissect
    from .models import load_model
    from .plan import parse_size
    from .runningstats import load_thresholds

    layers = [name.strip() for name in args.layers.split(",") if name.strip()]
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked but no CUDA device is available; use --device cpu")
    mean, std, image_size = _model_input(args)
    model = load_model(args.model, args.checkpoint, unsafe_pickle=args.unsafe_pickle, image_size=image_size)
    image_size = image_size or getattr(model, "fixed_input_size", None)  # a program exported for one size
    dataset = open_dataset(args.dataset, mean=mean, std=std, image_size=image_size)
    thresholds = load_thresholds(args.thresholds, layers) if args.thresholds else None
    options = DissectOptions(
        layers=layers,
        top_k=args.top_k,
        quantile=args.quantile,
        iou_rule=args.iou_rule,
        batch_size=args.batch_size,
        device=args.device,
        thresholds=thresholds,
        render=not args.no_render,
        highlight=args.highlight,
        num_workers=args.workers,
        disk_budget=parse_size(args.disk_budget),
        memory_budget=parse_size(args.memory_budget),
        spill=args.spill, threshold_method=args.threshold_method,
        cache_dtype=args.cache_dtype,
        resume=args.resume,
        checkpoint_every=args.checkpoint_every,
        channels_last=args.channels_last,
        grid=parse_grid(args.grid),
    )
    result = dissect(model, dataset, options, args.out)  # prints the plan on stderr before the sweep
    for name, layer in result.layers.items():
        line = layer.summary.get("line") or f"{layer.num_units} units (unlabelled dataset: no IoU labels)"
        print(f"{name}: {line}")
    if result.skipped_images:
        print(f"skipped {len(result.skipped_images)} unreadable image(s): {', '.join(result.skipped_images[:10])}")
    plan = result.plan or {}
    print(f"plan: spilled {', '.join(plan.get('spilled', [])) or 'none'}, recomputed "
          f"{', '.join(plan.get('recomputed', [])) or 'none'}; spill {plan.get('measured_spill_bytes', 0) / 1e6:.1f} "
          f"MB "
          f"(estimated {plan.get('disk_bytes', 0) / 1e6:.1f} MB)")
    t = result.timings
    print(f"outputs in {Path(args.out).resolve()} ({t.get('total', 0):.1f} s: results {t.get('results', 0):.1f} s, "
          f"then pictures {t.get('render', 0):.1f} s)")
    return 0


def main_layers(args: argparse.Namespace) -> int:
    """Every named module with its output shape and how it would be dissected, from a shape probe."""
    import json

    from .capture import parse_grid
    from .catalogue import PROGRAM, input_spec, is_known
    from .layers import layer_table, table_lines
    from .models import load_model

    size = args.image_size
    if size is None:
        size = input_spec(args.model).size if is_known(args.model) and args.model != PROGRAM else 224
    model = load_model(args.model, args.checkpoint, unsafe_pickle=args.unsafe_pickle, image_size=size)
    if args.image_size is None and getattr(model, "fixed_input_size", None):
        size = model.fixed_input_size
    grid = parse_grid(args.grid)
    rows = layer_table(model, size, grid=grid)
    if args.json:
        print(json.dumps({"model": args.model, "image_size": size, "grid": list(grid) if grid else None,
                          "layers": [r.to_json() for r in rows]}, indent=1))
    else:
        print(f"{args.model} at {size}x{size} px:")
        print("\n".join(table_lines(rows, readable_only=args.readable)))
    return 0


def main_mixture_make(args: argparse.Namespace) -> int:
    from .mixture import MixtureSpec, make_mixture

    try:
        redundant = [int(x) for x in args.redundant.split(",") if x.strip()] if args.redundant else []
    except ValueError:
        raise EngineError(f"--redundant must be comma-separated digits such as 8,9, got '{args.redundant}'") from None
    out = make_mixture(args.out, n_images=args.images, seed=args.seed, split=args.split, overwrite=args.overwrite,
                       progress=True, spec=MixtureSpec(source=args.source, canvas=args.canvas, redundant=redundant))
    print(f"mixture dataset written to {out}")
    return 0


def main_mixture_train(args: argparse.Namespace) -> int:
    from .train import NetShape, recipe_for, train_mixture

    metrics = train_mixture(
        args.data, args.out, val_dir=args.val, net=NetShape(args.design, args.width, args.dropout),
        recipe=recipe_for(args.design, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr),
        seed=args.seed, device=args.device,
    )
    print(" ".join(f"{k}={v}" for k, v in metrics.items() if not isinstance(v, (list, dict))))
    print(f"checkpoint written to {args.out}")
    return 0


def main_plan(args: argparse.Namespace) -> int:
    """The plan a dissection would follow, printed without reading any image."""
    import tempfile

    from .datasets import open_dataset
    from .dissect import DissectOptions, plan_dissection
    from .models import load_model
    from .plan import parse_size, write_sized_index

    with tempfile.TemporaryDirectory(prefix="unitcrowd-plan-") as tmp:
        if args.dataset:
            spec, what = args.dataset, args.dataset
        else:
            spec = f"broden:{write_sized_index(Path(tmp), args.images, args.size, args.seg_size)}"
            what = f"{args.images} images at {args.size} px (an index of that size; no image is read)"
        dataset = open_dataset(spec)
        model = load_model(args.model, None)
        for layer in [x.strip() for x in args.layers.split(",") if x.strip()]:
            options = DissectOptions(
                layers=[layer], batch_size=args.batch_size, device="cpu", progress_bar=False,
                disk_budget=parse_size(args.disk_budget), memory_budget=parse_size(args.memory_budget),
                spill=args.spill, cache_dtype=args.cache_dtype, threshold_method=args.threshold_method,
            )
            print(f"{args.model} {layer}, {what}:")
            print("\n".join(plan_dissection(model, dataset, options).lines()))
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tasks.engine", description="UnitCrowd dissection engine")
    sub = parser.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dissect", help="label the units of a network's layers on a probe dataset")
    d.add_argument("--dataset", required=True, help="broden:PATH, folder:PATH or a bare path")
    d.add_argument("--model", required=True,
                   help="architecture: any torchvision classification model (resnet50, convnext_tiny, vit_b_16, ...), "
                        "timm:<name>, mixturenet, or program (--checkpoint is a torch.export .pt2 file)")
    d.add_argument(
        "--checkpoint", default=None, help="state_dict file, or a .pt2 program (default: seeded random weights)"
    )
    d.add_argument("--unsafe-pickle", action="store_true", help="allow whole pickled models (runs their code)")
    d.add_argument("--layers", required=True, help="comma-separated module paths, e.g. layer3,layer4")
    d.add_argument("--grid", default=None, help=GRID_HELP)
    d.add_argument("--out", required=True, help="output folder (one sub-folder per layer)")
    d.add_argument("--quantile", type=float, default=0.005, help="top fraction of activations above T (0.005)")
    d.add_argument("--top-k", type=int, default=10, help="top images kept and rendered per unit")
    d.add_argument("--iou-rule", choices=["lite", "original"], default="lite")
    d.add_argument("--thresholds", default=None, help=".npy (one layer) or .npz (per layer) thresholds to use")
    d.add_argument("--mean", default=None,
                   help="per-channel mean, 0..1 units (default: the architecture's weights'; NetDissect-Lite's for "
                        "the NetDissect architectures, mixturenet and programs)")
    d.add_argument("--std", default=None, help="per-channel std, 0..1 units (default: as --mean)")
    d.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="resize images to N x N (default: Broden's stored size; a fixed-size network's own size, e.g. ViT 224)",
    )
    d.add_argument("--batch-size", type=int, default=32)
    d.add_argument("--workers", type=int, default=default_workers(), help="DataLoader worker processes decoding images")
    d.add_argument("--device", default=default_device(), help="cpu or cuda (default: cuda when present)")
    d.add_argument("--highlight", choices=["overlay", "outline"], default="overlay")
    d.add_argument("--no-render", action="store_true", help="skip exemplar pictures")
    add_resource_arguments(d)
    d.add_argument("--resume", action="store_true",
                   help="go on from the stage files of a killed run with the same inputs")
    d.add_argument("--checkpoint-every", type=int, default=50, help="batches per chunk between stage files")
    d.set_defaults(func=main_dissect)

    mix = sub.add_parser("mixture", help="mixture-of-digits datasets and MixtureNet "
                                         "training").add_subparsers(dest="action", required=True)
    mk = mix.add_parser("make", help="write a mixture-of-digits Broden-format dataset")
    mk.add_argument("--out", required=True)
    mk.add_argument("--source", default="digits", help="digits | idx:PATH | mnist")
    mk.add_argument("--images", type=int, default=20000)
    mk.add_argument("--canvas", type=int, default=64)
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--split", choices=["train", "val"], default="train")
    mk.add_argument("--redundant", default="", help="digits shown at random in all classes, e.g. 8,9")
    mk.add_argument("--overwrite", action="store_true")
    mk.set_defaults(func=main_mixture_make)
    tr = mix.add_parser("train", help="train MixtureNet on a mixture dataset")
    tr.add_argument("--data", required=True)
    tr.add_argument("--val", default=None)
    tr.add_argument("--out", required=True, help="checkpoint file to write")
    tr.add_argument("--design", choices=["mixturenet", "seed"], default="mixturenet",
                    help="mixturenet (ours: BatchNorm, strided conv1) or seed (the seed's plain network)")
    tr.add_argument("--epochs", type=int, default=None, help="default: the design's recipe (train.RECIPES)")
    tr.add_argument("--batch-size", type=int, default=None, help="default: the design's recipe")
    tr.add_argument("--lr", type=float, default=None, help="default: the design's recipe")
    tr.add_argument("--width", type=float, default=1.0, help="conv3 width multiplier")
    tr.add_argument("--dropout", type=float, default=0.0)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default=default_device())
    tr.set_defaults(func=main_mixture_train)

    from .sanity import add_cli_arguments as add_sanity_arguments, run_cli as run_sanity_cli

    s = sub.add_parser("sanity", help="the Mixture-of-digits sanity-check report (variants x seeds)")
    add_sanity_arguments(s)
    s.set_defaults(func=run_sanity_cli)

    from .gan.cli import add_cli_arguments as add_gan_arguments, run_cli as run_gan_cli

    g = sub.add_parser("gan", help="GAN Dissection: train|segmenter|dissect|intervene|demo on generator units")
    add_gan_arguments(g)
    g.set_defaults(func=run_gan_cli)

    ly = sub.add_parser("layers", help="print every layer's output shape and how it would be dissected (no image read)")
    ly.add_argument(
        "--model", required=True, help="as for dissect: a catalogue name, timm:<name>, mixturenet or program"
    )
    ly.add_argument("--checkpoint", default=None, help="state_dict or .pt2 program (needed for program)")
    ly.add_argument("--unsafe-pickle", action="store_true", help="allow whole pickled models (runs their code)")
    ly.add_argument(
        "--image-size", type=int, default=None, help="probe at N x N (default: the architecture's size, else 224)"
    )
    ly.add_argument("--grid", default=None, help=GRID_HELP)
    ly.add_argument("--readable", action="store_true", help="only the layers that can be dissected")
    ly.add_argument("--json", action="store_true", help="the table as JSON")
    ly.set_defaults(func=main_layers)

    pl = sub.add_parser("plan", help="print the spill-or-recompute plan (disk, memory) per layer, reading no image")
    pl.add_argument("--model", default="resnet18")
    pl.add_argument("--layers", default="layer1,layer4", help="comma-separated; each layer is planned alone")
    pl.add_argument("--dataset", default=None, help="plan this dataset (default: an index of --images rows)")
    pl.add_argument("--images", type=int, default=63305, help="rows of the generated index (full Broden: 63,305)")
    pl.add_argument("--size", type=int, default=224)
    pl.add_argument("--seg-size", type=int, default=None, help="segmentation size (default: size / 2)")
    pl.add_argument("--batch-size", type=int, default=32)
    add_resource_arguments(pl)
    pl.set_defaults(func=main_plan)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_args_parser().parse_args(argv)
    try:
        return args.func(args)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
