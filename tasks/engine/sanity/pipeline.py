"""The Mixture-of-digits sanity check (the seed's controlled experiment) as one reproducible experiment.

Trains the variants (baseline, dropout on conv3, conv3 three times wider, both) of one or
both networks (ours, MixtureNet with BatchNorm, and the seed's plain network) over several
seeds, measures every conv unit against the known digits (precision@K, precision at recall,
AP, IoU, ablation), runs the usefulness experiment (digits 8 and 9
redundant) and writes report.json, report.md, report.html and PNG plots. Framework-free:
the Django app and the command line both call `run_sanity` / `main`.

Runs are independent, so on a CPU they are spread over worker processes (one thread each;
small convolutions scale better over processes than over threads).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from pathlib import Path

import numpy as np

from ..errors import EngineError
from .summary import NETWORKS

LAYERS = ("conv1", "conv2", "conv3")
KS = (100, 300, 500, 700)
RECALLS = (0.25, 0.5, 0.75)
# name -> (conv3 width factor, dropout on conv3's pooled units)
VARIANTS: dict[str, tuple[float, float]] = {
    "baseline": (1.0, 0.0),
    "dropout": (1.0, 0.5),
    "wide": (3.0, 0.0),
    "wide_dropout": (3.0, 0.5),
}
USEFULNESS_REDUNDANT = (8, 9)
# Run ids of the seed design start with RUN_PREFIX.
RUN_PREFIX = {"mixturenet": "", "seed": "seednet_"}

Progress = Callable[[str, float], None] | None

# The full run of --network both (SanityConfig.full_config): every variant and the usefulness experiment on
# both networks, within the 20-minute budget on two idle cores by estimate_minutes (19.7 min; the defaults
# would take 43). What it gives up, cheapest first (engine README, "How long"):
FULL_BOTH: dict = dict(
    seeds=2,  # the fewest that still give a spread (3 seeds: +10 min)
    seed_epochs=3,  # the seed recipe over 3 epochs: 91.8% val (4 epochs: 93.8%; the seed paper: 91.7%)
    epochs=2,  # ours: 2 epochs instead of 3 (BatchNorm; its accuracy is in the report)
    ablation_images=300, iou_images=300,  # ablation and IoU on the first 300 validation images, not 1,000
    top_k=10,  # exemplars per unit
    # The usefulness experiment (one seed, 28 classes) on 10,000 training and 4,000 validation images;
    # precision@K and the digit-0 claim come from the variants' 10,000 validation images.
    useful_n_train=10000, useful_n_val=4000,
)
# The quick run of --network both (SanityConfig.quick_config): a smoke test of the code path within the
# 2-minute budget (the quick settings alone would take 3.2 minutes with both networks).
QUICK_BOTH: dict = dict(n_train=2000, seed_epochs=2, ablation_images=150, iou_images=150)


@dataclass
class SanityConfig:
    """Everything that decides the numbers; stored in report.json so a run can be repeated."""

    source: str = "digits"  # "digits" (scikit-learn, upscaled) or "idx:PATH" (MNIST IDX files)
    # "mixturenet" (ours), "seed" (the seed's plain network) or "both". The seed's network costs ~2.5x per
    # image and its recipe takes 4 epochs, so with these defaults only "mixturenet" fits the 20-minute budget
    # on 2 cores; full_config(network="both") applies FULL_BOTH, which does. estimate_minutes says how long.
    network: str = "mixturenet"
    seeds: int = 3
    n_train: int = 20000
    # 10,000: precision@K depends on how many images are ranked, and the seed's own figures (P@700 = 0.99
    # with P@R=0.75 = 0.90) need more than ~930 images showing the digit; 10,000 hold about 2,000
    # (benchmarks/precision_probe.py measures how P@K moves with N).
    n_val: int = 10000
    epochs: int = 3  # 20,000 images x 3 epochs: 94% validation accuracy in a probe (the seed: 91.7%)
    batch_size: int = 64
    lr: float = 1e-2  # epochs, lr and batch_size are MixtureNet's; the seed network's come from seed_epochs / seed_lr
    seed_epochs: int | None = None  # None: train.RECIPES["seed"]
    seed_lr: float | None = None  # None: train.RECIPES["seed"]
    canvas: int = 64
    digit_size: int = 28
    dropout: float = 0.5
    wide: float = 3.0
    variants: list[str] = field(default_factory=lambda: list(VARIANTS))
    usefulness: bool = True
    usefulness_seeds: int | None = 1  # seeds of the usefulness experiment (None: as many as `seeds`)
    # training and validation images of the usefulness experiment (None: n_train / n_val); the report says so
    # when they differ. Its figures are best AP per digit and accuracy: no precision@700 to feed.
    useful_n_train: int | None = None
    useful_n_val: int | None = None
    ap_cutoff: float = 0.8  # a unit is a detector of digit d when its AP for d reaches this
    top_k: int = 15  # top images per unit (the CVPR human evaluation showed 15)
    # Ablation and IoU counting dominate measuring time on a CPU; they use the first images.
    ablation_images: int | None = 1000  # val images used for ablation (None: all)
    iou_images: int | None = 1000  # val images whose masks are counted for IoU (None: all)
    workers: int | None = None  # worker processes (None: 2 on a CPU with >= 2 cores, 1 on CUDA)
    device: str | None = None  # None: CUDA when present
    keep_data: bool = False  # keep the training sets after the run (val sets are always kept)
    quick: bool = False

    @classmethod
    def quick_config(cls, **overrides) -> SanityConfig:
        """Small enough for the 2-minute budget on two cores (with QUICK_BOTH for `network="both"`); same code
        path as the full run."""
        base = dict(seeds=1, n_train=3000, n_val=1000, epochs=4, top_k=10, iou_images=300, ablation_images=300,
                    quick=True)
        if overrides.get("network") == "both":
            base.update(QUICK_BOTH)
        return cls(**{**base, **overrides})

    @classmethod
    def full_config(cls, **overrides) -> SanityConfig:
        """The full run: the defaults, and for `network="both"` the settings of FULL_BOTH (every variant
        and the usefulness experiment on both networks within the 20-minute budget on two cores).
        The command line and the web pages build the full run through this."""
        base = dict(FULL_BOTH) if overrides.get("network") == "both" else {}
        return cls(**{**base, **overrides})

    @classmethod
    def for_run(cls, *, quick: bool = False, **overrides) -> SanityConfig:
        """quick_config or full_config."""
        return cls.quick_config(**overrides) if quick else cls.full_config(**overrides)

    def validate(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise EngineError(f"unknown variant(s) {unknown}; choose from {', '.join(VARIANTS)}")
        if self.network not in NETWORKS:
            raise EngineError(f"unknown network {self.network!r}; choose from {', '.join(NETWORKS)}")
        for name in ("seed_epochs", "seed_lr"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise EngineError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("seeds", "n_train", "n_val", "epochs", "batch_size", "top_k"):
            if getattr(self, name) < 1:
                raise EngineError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("useful_n_train", "useful_n_val"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise EngineError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise EngineError(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0.0 < self.ap_cutoff <= 1.0:
            raise EngineError(f"ap_cutoff must lie in (0, 1], got {self.ap_cutoff}")

    @property
    def useful_seed_count(self) -> int:
        return min(self.seeds, self.usefulness_seeds) if self.usefulness_seeds else self.seeds

    @property
    def useful_train_images(self) -> int:
        return self.useful_n_train or self.n_train

    @property
    def useful_val_images(self) -> int:
        return self.useful_n_val or self.n_val

    @property
    def designs(self) -> tuple[str, ...]:
        return NETWORKS[self.network]

    def recipe(self, design: str):
        """The training recipe (train.Recipe) this configuration uses for `design`."""
        from ..train import recipe_for

        if design == "seed":
            return recipe_for("seed", epochs=self.seed_epochs, lr=self.seed_lr)
        return recipe_for(design, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size)

    def variant_params(self, variant: str) -> tuple[float, float]:
        width, dropout = VARIANTS[variant]
        return (self.wide if width != 1.0 else 1.0), (self.dropout if dropout else 0.0)


# -- how long it takes ----------------------------------------------------------------------------

# CPU milliseconds per image (one thread unless noted) on a 2-core development machine: training per image
# and epoch in channels-last (train._channels_last), from full 20,000-image runs of each design; the rest
# fitted to the per-stage CPU seconds of a quick MixtureNet run (report.json `runs[].cpu_seconds`), the
# seed design's forward pass taken as ~3x ours. The runs behind them: benchmarks/RESULTS.md.
COST_MS: dict[str, Any] = {
    "train": {"mixturenet": 0.9, "seed": 2.3},
    "forward": {"mixturenet": 0.21, "seed": 0.65},
    "wide_factor": {"mixturenet": 1.35, "seed": 1.25},  # conv3 three times wider: cost x this
    "make_image": 3.0,
    "dissect_image": 0.6,  # top-k and quantile statistics per validation image, beyond the forward pass
    "iou_image": 8.0,  # per image whose masks are counted (3 layers)
    "exemplar": 4.0,  # per picture rendered
    "run_overhead": 1500.0,  # per run: loading the data and the model, writing run.json
}


def estimate_minutes(config: SanityConfig, *, workers: int | None = None) -> float:
    """About how many minutes `run_sanity(config)` takes on an idle machine with `workers` CPU cores
    (default: the worker processes the run would use on a CPU). The web page shows this figure."""
    config.validate()
    workers = workers or _pool_size(config, "cpu")
    c = COST_MS
    images = config.n_val + config.seeds * config.n_train
    if config.usefulness:
        images += config.useful_val_images + config.useful_seed_count * config.useful_train_images
    total_ms = images * c["make_image"]
    for job in _jobs(config, Path("."), {name: "" for name in _data_specs(config)}, "cpu", None):
        design = job["design"]
        wide = c["wide_factor"][design] if job["width"] > 1 else 1.0
        n_units = 30 + round(10 * job["width"])  # conv1 10, conv2 20, conv3 10 x width, in both designs
        forward = c["forward"][design] * wide
        n_val = job["n_val"]
        n_abl = min(config.ablation_images or n_val, n_val)
        n_iou = min(config.iou_images or n_val, n_val)
        total_ms += job["n_train"] * job["recipe"]["epochs"] * c["train"][design] * wide
        total_ms += n_val * (2 * forward + c["dissect_image"])  # scores, dissection statistics
        total_ms += n_iou * (forward + c["iou_image"]) + n_units * config.top_k * c["exemplar"]
        total_ms += (n_units + 1) * n_abl * forward  # ablation: one pass per zeroed unit
        total_ms += c["run_overhead"]
    return total_ms / 1000.0 / 60.0 / max(1, workers)


# -- data ---------------------------------------------------------------------------------------


def _data_specs(config: SanityConfig) -> dict[str, dict]:
    """Datasets to make: name -> make_mixture arguments (train sets per seed, one val set each)."""
    common = dict(source=config.source, canvas=config.canvas, digit_size=config.digit_size)
    specs: dict[str, dict] = {"val": dict(common, split="val", n_images=config.n_val, seed=10_000)}
    for s in range(config.seeds):
        specs[f"train_s{s}"] = dict(common, split="train", n_images=config.n_train, seed=s)
    if config.usefulness:
        red = list(USEFULNESS_REDUNDANT)
        specs["useful_val"] = dict(common, split="val", n_images=config.useful_val_images, seed=10_001, redundant=red)
        for s in range(config.useful_seed_count):
            specs[f"useful_train_s{s}"] = dict(common, split="train", n_images=config.useful_train_images, seed=100 + s,
                                               redundant=red)
    return specs


def _make_dataset(path: str, spec: dict) -> float:
    """Make one dataset unless the same arguments already made it (cached across reruns); returns CPU seconds."""
    from ..mixture import MixtureSpec, make_mixture

    c = time.process_time()
    _limit_threads(1)
    done = Path(path) / "sanity-spec.json"
    if done.is_file() and json.loads(done.read_text()) == spec:
        return time.process_time() - c
    drawing = {f.name for f in fields(MixtureSpec)}
    make_mixture(path, overwrite=True, spec=MixtureSpec(**{k: v for k, v in spec.items() if k in drawing}),
                 **{k: v for k, v in spec.items() if k not in drawing})
    done.write_text(json.dumps(spec, sort_keys=True))
    return time.process_time() - c


# -- one run: train, measure, dissect, ablate ----------------------------------------------------


def _limit_threads(n: int) -> None:
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)


def _run_one(job: dict) -> dict:
    """Train and measure one network; returns the run's JSON-able result (also in run.json)."""
    from .measure import measure_run

    if job.get("threads"):
        _limit_threads(job["threads"])
    return measure_run(job)


def _jobs(config: SanityConfig, out_dir: Path, data: dict[str, str], device: str, threads: int | None) -> list[dict]:
    jobs = []
    experiments = [("variants", v, "train", "val") for v in config.variants]
    if config.usefulness:
        experiments.append(("usefulness", "baseline", "useful_train", "useful_val"))
    # Order by seed first so that an interrupted run still has every variant of seed 0.
    for s in range(config.seeds):
        for design in config.designs:
            recipe = asdict(config.recipe(design))
            for experiment, variant, train, val in experiments:
                if experiment == "usefulness" and s >= config.useful_seed_count:
                    continue
                width, dropout = config.variant_params(variant)
                run_id = f"{RUN_PREFIX[design]}{'useful_' if experiment == 'usefulness' else ''}{variant}_s{s}"
                jobs.append({
                    "id": run_id, "design": design, "experiment": experiment, "variant": variant, "seed": s,
                    "n_train": config.useful_train_images if experiment == "usefulness" else config.n_train,
                    "n_val": config.useful_val_images if experiment == "usefulness" else config.n_val,
                    "width": width, "dropout": dropout, "train_dir": data[f"{train}_s{s}"], "val_dir": data[val],
                    "run_dir": str(out_dir / "runs" / run_id), "out_dir": str(out_dir), "recipe": recipe,
                    "top_k": config.top_k, "ap_cutoff": config.ap_cutoff, "ablation_images": config.ablation_images,
                    "iou_images": config.iou_images, "ks": list(KS), "recalls": list(RECALLS), "layers": list(LAYERS),
                    "device": device, "threads": threads,
                })
    return jobs


def _pool_size(config: SanityConfig, device: str) -> int:
    if config.workers is not None:
        return max(1, config.workers)
    if device.startswith("cuda"):
        return 1
    # Celery's prefork children are daemonic and may not start processes of their own.
    if multiprocessing.current_process().daemon:
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def _map(fn, items: Sequence, workers: int, on_done: Callable[[int], None]) -> list:
    """fn over items, in worker processes when workers > 1; results in input order."""
    results: list = [None] * len(items)
    if workers <= 1 or len(items) <= 1:
        for k, item in enumerate(items):
            results[k] = fn(item)
            on_done(k)
        return results
    # spawn: forking a process that already ran torch's thread pools can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {pool.submit(fn, item): k for k, item in enumerate(items)}
        for future in as_completed(futures):
            results[futures[future]] = future.result()
            on_done(futures[future])
    return results


def run_sanity(config: SanityConfig, out_dir: Path | str, *, progress: Progress = None) -> dict:
    """Run the whole experiment into `out_dir`; returns the report dict also written as report.json.

    progress(stage, fraction) is called as datasets are made and runs finish.
    """
    from ..models import default_device
    from .report import summarise, write_report

    config.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = config.device or default_device()
    workers = _pool_size(config, device)
    threads = 1 if workers > 1 else None
    started = time.perf_counter()
    timings: dict[str, float] = {}

    specs = _data_specs(config)
    data = {name: str(out_dir / "data" / name) for name in specs}
    made = [0]

    def data_done(_k: int) -> None:
        made[0] += 1
        if progress is not None:
            progress("data", made[0] / len(specs))

    data_cpu = _map(_pool_call_make, [(data[n], specs[n]) for n in specs], workers, data_done)
    timings["data"] = time.perf_counter() - started

    jobs = _jobs(config, out_dir, data, device, threads)
    finished = [0]

    def run_done(_k: int) -> None:
        finished[0] += 1
        if progress is not None:
            progress("runs", finished[0] / len(jobs))

    t_runs = time.perf_counter()
    runs = _map(_run_one, jobs, workers, run_done)
    timings["runs"] = time.perf_counter() - t_runs

    if not config.keep_data:
        for name in specs:
            if "train" in name:
                shutil.rmtree(data[name], ignore_errors=True)
    t_report = time.perf_counter()
    report = summarise(config=asdict(config), runs=runs, data={n: _rel(Path(p), out_dir) for n, p in data.items()})
    report["device"] = device
    report["workers"] = workers
    report["estimate_minutes"] = round(estimate_minutes(config, workers=workers), 1)
    timings["report"] = 0.0
    timings["total"] = time.perf_counter() - started
    report["timings"] = {k: round(v, 2) for k, v in timings.items()}
    report["cpu_seconds"] = {"data": round(sum(data_cpu), 1),
                             "runs": round(sum(sum(r["cpu_seconds"].values()) for r in runs), 1)}
    write_report(report, out_dir)
    report["timings"]["report"] = round(time.perf_counter() - t_report, 2)
    report["timings"]["total"] = round(time.perf_counter() - started, 2)
    report = _finite(report)  # strict JSON (PostgreSQL's jsonb refuses NaN)
    (out_dir / "report.json").write_text(json.dumps(report, allow_nan=False, separators=(",", ":")))
    if progress is not None:
        progress("done", 1.0)
    return report


def _finite(value):
    """The report with NaN/inf replaced by None, recursively."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _pool_call_make(args: tuple[str, dict]) -> float:
    return _make_dataset(*args)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


# -- command line ----------------------------------------------------------------------------------


def config_from_args(args: argparse.Namespace) -> SanityConfig:
    overrides = {
        name: getattr(args, name)
        for name in ("seeds", "n_train", "n_val", "epochs", "workers", "device", "ap_cutoff", "top_k",
                     "iou_images", "ablation_images", "lr", "batch_size", "usefulness_seeds", "network",
                     "seed_epochs", "seed_lr", "useful_n_train", "useful_n_val")
        if getattr(args, name, None) is not None
    }
    overrides["source"] = args.source
    overrides["keep_data"] = bool(getattr(args, "keep_data", False))
    if getattr(args, "no_usefulness", False):
        overrides["usefulness"] = False
    if getattr(args, "variants", None):
        overrides["variants"] = [v.strip() for v in args.variants.split(",") if v.strip()]
    return SanityConfig.for_run(quick=bool(args.quick), **overrides)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sanity-check options, shared by `python -m tasks.engine sanity` and `manage.py sanity_check`."""
    parser.add_argument("--source", default="digits",
                        help="digit source: 'digits' (scikit-learn, offline) or 'idx:PATH' (MNIST IDX files)")
    parser.add_argument("--network", choices=list(NETWORKS), default=None,
                        help="mixturenet (ours: BatchNorm, strided conv1; the default), seed (the seed's plain "
                             "network, ~2.5x the training work per image) or both; the estimate is printed before the "
                             "run")
    parser.add_argument("--seeds", type=int, default=None,
                        help="training seeds per variant (default 3; the full run of --network both 2; quick 1)")
    parser.add_argument("--quick", action="store_true",
                        help="small configuration, one seed (the estimate, estimate_minutes, is printed before the "
                             "run)")
    parser.add_argument("--n-train", dest="n_train", type=int, default=None, help="training images (default 20000)")
    parser.add_argument("--n-val", dest="n_val", type=int, default=None, help="validation images (default 10000)")
    parser.add_argument("--epochs", type=int, default=None, help="MixtureNet's training epochs")
    parser.add_argument("--lr", type=float, default=None, help="MixtureNet's Adam learning rate")
    parser.add_argument("--seed-epochs", dest="seed_epochs", type=int, default=None,
                        help="epochs of the seed network (default: its recipe, train.RECIPES)")
    parser.add_argument("--seed-lr", dest="seed_lr", type=float, default=None,
                        help="the seed network's Adam learning rate (default: its recipe)")
    parser.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    parser.add_argument("--iou-images", dest="iou_images", type=int, default=None,
                        help="validation images whose masks are counted for IoU (default: see the configuration)")
    parser.add_argument("--ablation-images", dest="ablation_images", type=int, default=None,
                        help="validation images used for ablation (default: all)")
    parser.add_argument("--variants", default=None, help=f"comma-separated subset of {','.join(VARIANTS)}")
    parser.add_argument("--no-usefulness", dest="no_usefulness", action="store_true",
                        help="skip the usefulness experiment (digits 8 and 9 redundant)")
    parser.add_argument("--usefulness-seeds", dest="usefulness_seeds", type=int, default=None,
                        help="seeds of the usefulness experiment (default 1, to fit the 20-minute budget)")
    parser.add_argument("--useful-n-train", dest="useful_n_train", type=int, default=None,
                        help="training images of the usefulness experiment (default: as --n-train; the full run "
                             "of --network both: see FULL_BOTH)")
    parser.add_argument("--useful-n-val", dest="useful_n_val", type=int, default=None,
                        help="validation images of the usefulness experiment (default: as --n-val; the full run of "
                             "--network both: see FULL_BOTH)")
    parser.add_argument("--ap-cutoff", dest="ap_cutoff", type=float, default=None,
                        help="AP at or above which a unit counts as a digit detector (default 0.8)")
    parser.add_argument("--top-k", dest="top_k", type=int, default=None, help="top images per unit")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: 2 on CPU, 1 on CUDA)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--keep-data", dest="keep_data", action="store_true", help="keep the training sets")


def add_cli_arguments(parser: argparse.ArgumentParser) -> None:
    """add_arguments plus --out and --bench: what `python -m tasks.engine sanity` takes."""
    add_arguments(parser)
    parser.add_argument("--out", default="var/sanity", help="output folder (default var/sanity)")
    parser.add_argument("--bench", action="store_true",
                        help="time the run and append the figures to OUT/bench.json (budget: full 20 min, quick 2 min)")


def run_cli(args: argparse.Namespace) -> int:
    """Run the experiment from parsed add_cli_arguments options; 0 on success, 2 on bad input."""
    try:
        config = config_from_args(args)
        config.validate()
    except (EngineError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    last = [""]

    def show(stage: str, fraction: float) -> None:
        if stage != last[0] or fraction >= 1.0:
            print(f"[sanity] {stage}: {fraction:.0%}", file=sys.stderr, flush=True)
        last[0] = stage

    print(f"[sanity] {len(_jobs(config, Path(args.out), {n: '' for n in _data_specs(config)}, 'cpu', None))} runs; "
          f"about {estimate_minutes(config):.0f} minute(s) on an idle machine with {_pool_size(config, 'cpu')} "
          "core(s) (longer when the cores are shared)", flush=True)
    t0 = time.perf_counter()
    try:
        report = run_sanity(config, args.out, progress=show)
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    print(f"report: {Path(args.out) / 'report.html'}  ({seconds:.1f} s)")
    for line in report.get("headline", []):
        print("  " + line)
    if args.bench:
        budget = 120 if config.quick else 1200
        cpu = dict(report["cpu_seconds"])
        workers = report["workers"]
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["main_process"] = round(own.ru_utime + own.ru_stime, 1)
        cpu["worker_processes"] = round(children.ru_utime + children.ru_stime, 1)
        # Idle-machine estimate: workers are single-threaded, so on an idle machine their CPU seconds
        # are wall seconds shared over `workers` cores; the main process's own work adds to it.
        spread = cpu["worker_processes"] / workers if workers > 1 else 0.0
        estimate = spread + cpu["main_process"] if workers > 1 else cpu["main_process"] + cpu["worker_processes"]
        record = {"quick": config.quick, "seconds": round(seconds, 1), "budget_s": budget,
                  "estimate_s": round(60 * report["estimate_minutes"], 1),
                  "cpu_seconds": cpu, "idle_estimate_s": round(estimate, 1),
                  "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
                  "within_budget": seconds <= budget, "timings": report["timings"], "cpus": os.cpu_count(),
                  "device": report["device"], "workers": report["workers"], "runs": len(report["runs"]),
                  "run_timings": {r["id"]: r["timings"] for r in report["runs"]},
                  "config": {f.name: getattr(config, f.name) for f in fields(config)}}
        bench = Path(args.out) / "bench.json"
        history = json.loads(bench.read_text()) if bench.is_file() else []
        bench.write_text(json.dumps(history + [record], indent=1))
        print(f"bench: {seconds:.1f} s wall of a {budget} s budget -> {'OK' if record['within_budget'] else 'OVER'}; "
              f"idle-machine estimate from CPU time {estimate:.0f} s (load average now {record['load_average']})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m tasks.engine sanity [--source digits|idx:PATH] [--seeds 3] [--quick] [--out DIR] [--bench]`."""
    parser = argparse.ArgumentParser(prog="python -m tasks.engine sanity", description=__doc__.splitlines()[0])
    add_cli_arguments(parser)
    args = parser.parse_args(argv)
    try:
        config_from_args(args).validate()
    except (EngineError, TypeError) as exc:
        parser.error(str(exc))
    return run_cli(args)


if __name__ == "__main__":
    raise SystemExit(main())
