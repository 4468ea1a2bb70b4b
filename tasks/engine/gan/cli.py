"""``python -m tasks.engine gan train|segmenter|dissect|intervene|demo``.

Each command is a ``main_*(args)``; ``add_cli_arguments`` builds the sub-parsers so the
engine's __main__ only wires this package in, as it does the sanity package.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import EngineError


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise EngineError(f"--{what} must be comma-separated whole numbers, got '{text}'") from None


def main_train(args: argparse.Namespace) -> int:
    from .data import make_canvases
    from .train import GanRecipe, train_gan

    if args.make:
        make_canvases(args.data, n_images=args.make, canvas=args.canvas, source=args.source)
    if args.sprites:  # the demo's layered generator, with the demo's recipe
        from .demo import DemoSizes, gan_recipe

        recipe = replace(gan_recipe(DemoSizes()), steps=args.steps, batch_size=args.batch_size, z_dim=args.z_dim,
                         width=args.width)
    else:
        recipe = GanRecipe(steps=args.steps, batch_size=args.batch_size, z_dim=args.z_dim, width=args.width)
    metrics = train_gan(args.data, args.out, recipe=recipe, seed=args.seed, resume=args.resume, device=args.device)
    print(f"steps={metrics['steps']} loss_d={metrics['loss_d']:.3f} loss_g={metrics['loss_g']:.3f} "
          f"seconds={metrics['seconds']:.0f}\ngenerator checkpoint written to {args.out}")
    return 0


def main_segmenter(args: argparse.Namespace) -> int:
    from .data import load_canvases
    from .models import load_segmenter
    from .segmenter import SegmenterRecipe, evaluate_segmenter, train_segmenter

    if args.evaluate:
        scores = evaluate_segmenter(load_segmenter(checkpoint=args.evaluate, unsafe_pickle=args.unsafe_pickle),
                                    load_canvases(args.val))
    else:
        if not args.data or not args.out:
            raise EngineError("training a segmenter needs --data and --out (or --evaluate CHECKPOINT to score one)")
        recipe = SegmenterRecipe(epochs=args.epochs, width=args.width)
        scores = train_segmenter(args.data, args.out, val_dir=args.val, recipe=recipe, seed=args.seed,
                                 device=args.device).get("val", {})
    print(json.dumps(scores, indent=2))
    return 0


def _models(args: argparse.Namespace):
    from .models import load_generator, load_segmenter

    gen = load_generator(args.arch, args.generator, unsafe_pickle=args.unsafe_pickle)
    seg = load_segmenter(checkpoint=args.segmenter, unsafe_pickle=args.unsafe_pickle)
    return gen, seg


def main_dissect(args: argparse.Namespace) -> int:
    from .dissect import GanDissectOptions, dissect_generator

    gen, seg = _models(args)
    options = GanDissectOptions(layers=[x.strip() for x in args.layers.split(",") if x.strip()], n_samples=args.samples,
                                seed=args.seed, quantile=args.quantile, top_k=args.top_k, render=not args.no_render,
                                iqr=not args.no_iqr)
    result = dissect_generator(gen, seg, options, args.out)
    for name, layer in result.layers.items():
        print(f"{name}: {layer.summary.get('line')}")
    print(f"outputs in {Path(args.out).resolve()} ({result.timings['total']:.1f} s)")
    return 0


def main_intervene(args: argparse.Namespace) -> int:
    from .intervene import Intervention, causal_effect, make_baseline, rank_units
    from .models import DIGIT_NAMES
    from .ranking import digit_effects, ranking_table

    gen, seg = _models(args)
    base = make_baseline(gen, seg, n=args.samples, seed=args.seed)
    if args.rank:
        ranking = rank_units(gen, seg, args.layer, make_baseline(gen, seg, n=args.rank_samples, seed=args.seed + 1),
                             progress_bar=True)
        means = np.load(args.concept_means) if args.concept_means else None
        report: dict[str, object] = {"ranking": ranking_table(ranking, args.k),
                  "top_vs_random": digit_effects(gen, seg, args.layer, ranking, base, k=args.k, seed=args.seed,
                                                 concept_means=means)}
    else:
        from .edit import box_region
        from .intervene import layer_shape

        shape = layer_shape(gen, args.layer)
        values = [float(v) for v in args.values.split(",")] if args.values else None
        region = box_region(_ints(args.region_box, "region-box"), shape) if args.region_box else None
        # Units count from 1 on the command line, as in tally.csv; the Python API counts from 0.
        units = _ints(args.units, "units")
        bad = [u for u in units if not 1 <= u <= shape.units]
        if bad:
            raise EngineError(f"unknown unit(s) {bad} in layer '{args.layer}': it has units 1..{shape.units} (as in "
                              f"tally.csv)")
        iv = Intervention(args.layer, [u - 1 for u in units], args.mode, values=values, region=region)
        effect = causal_effect(gen, seg, iv, base)
        report = {"mode": args.mode, "units": [u + 1 for u in iv.units], "n_images": effect.n_images,
                  "effect": {name: effect.of(d + 1) for d, name in enumerate(DIGIT_NAMES)},
                  "pixels_before": {name: int(effect.before[d + 1]) for d, name in enumerate(DIGIT_NAMES)},
                  "pixels_after": {name: int(effect.after[d + 1]) for d, name in enumerate(DIGIT_NAMES)}}
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


def main_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    report = run_demo(args.out, quick=args.quick, source=args.source, seed=args.seed)
    t = report["training_seconds"]
    print(f"training on this machine ({t['cpu']}, {t['threads']} thread): generator {t['gan']:.0f} s, "
          f"segmenter {t['segmenter']:.0f} s")
    print(report["specificity_claim"]["line"])
    print(f"report: {Path(args.out).resolve() / 'index.html'} ({report['seconds_total']:.0f} s)")
    return 0


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--generator", required=True,
                   help="generator checkpoint (from `gan train` or {'arch','state_dict'})")
    p.add_argument("--arch", default=None,
                   help="generator architecture when the checkpoint does not name it (dcgan32, dcgan64)")
    p.add_argument("--segmenter", required=True, help="segmenter checkpoint (from `gan segmenter`)")
    p.add_argument("--unsafe-pickle", action="store_true", help="allow whole pickled modules (runs their code)")
    p.add_argument("--seed", type=int, default=0, help="sample stream: sample i has its own z from this seed")


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sub = parser.add_subparsers(dest="gan_command", required=True)
    t = sub.add_parser("train", help="train a DCGAN generator on mixture-of-digits canvases")
    t.add_argument("--data", required=True, help="mixture dataset folder (32 or 64 px canvases)")
    t.add_argument("--make", type=int, default=0, help="first write N canvases into --data (if not already there)")
    t.add_argument("--canvas", type=int, default=32, choices=[32, 64])
    t.add_argument("--source", default="digits", help="digits | idx:PATH (MNIST IDX files)")
    t.add_argument("--out", required=True, help="generator checkpoint to write")
    t.add_argument("--steps", type=int, default=3000)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--z-dim", type=int, default=64)
    t.add_argument("--width", type=int, default=32)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue from --out's training state")
    t.add_argument("--sprites", action="store_true",
                   help="train the demo's layered generator (sprites32: a sprite pathway per digit, 32 px canvases) "
                        "instead of a plain DCGAN")
    t.add_argument("--device", default=device)
    t.set_defaults(func=main_train)

    s = sub.add_parser("segmenter", help="train (or --evaluate) the digit segmenter; prints pixel accuracy and IoU")
    s.add_argument("--data", help="mixture dataset to train on")
    s.add_argument("--val", required=True, help="held-out mixture dataset to score on")
    s.add_argument("--out", help="segmenter checkpoint to write")
    s.add_argument("--evaluate", default=None, help="score this segmenter checkpoint instead of training")
    s.add_argument("--unsafe-pickle", action="store_true")
    s.add_argument("--epochs", type=int, default=4)
    s.add_argument("--width", type=int, default=12)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default=device)
    s.set_defaults(func=main_segmenter)

    d = sub.add_parser("dissect",
                       help="label generator units by IoU with the segmenter (classifier dissection's files)")
    _model_args(d)
    d.add_argument("--layers", default="layer2")
    d.add_argument("--out", required=True)
    d.add_argument("--samples", type=int, default=1000)
    d.add_argument("--quantile", type=float, default=0.005)
    d.add_argument("--top-k", type=int, default=10)
    d.add_argument("--no-render", action="store_true")
    d.add_argument("--no-iqr", action="store_true", help="skip the paper's per-concept IQR thresholds")
    d.set_defaults(func=main_dissect)

    i = sub.add_parser("intervene", help="causal effect of removing/inserting units, or --rank units per digit")
    _model_args(i)
    i.add_argument("--layer", default="layer2")
    i.add_argument("--units", default="", help="units as numbered in tally.csv (from 1), e.g. 3,17,40")
    i.add_argument("--mode", choices=["remove", "insert"], default="remove")
    i.add_argument("--values", default=None, help="insert: one value or one per unit")
    i.add_argument("--region-box", default=None, help="top,left,bottom,right in image pixels (default: everywhere)")
    i.add_argument("--samples", type=int, default=1000, help="images the effect is averaged over")
    i.add_argument("--rank", action="store_true", help="rank every unit per digit; top-k vs random-k per digit")
    i.add_argument("--rank-samples", type=int, default=300, help="images used to rank (another seed)")
    i.add_argument("--k", type=int, default=20)
    i.add_argument("--concept-means", default=None, help="dissection's <layer>/concept_means.npy: also try insertion")
    i.add_argument("--out", default=None, help="write the JSON here too")
    i.set_defaults(func=main_intervene)

    m = sub.add_parser("demo", help="everything on offline data: train, dissect, intervene, report")
    m.add_argument("--out", required=True)
    m.add_argument("--quick", action="store_true", help="small sizes (~2 minutes)")
    m.add_argument("--source", default="digits", help="digits | idx:PATH")
    m.add_argument("--seed", type=int, default=0)
    m.set_defaults(func=main_demo)


def run_cli(args: argparse.Namespace) -> int:
    return args.func(args)
