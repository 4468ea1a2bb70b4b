"""Benchmark: forward pass alone vs a full dissection on a synthetic Broden-format set.

Both runs use the same loader (decoding and normalising included). The ratio is the
dissection's results (thresholds, top images, IoU counts, tallies and summaries on disk)
against the forward pass; the render stage that follows (exemplar pictures) is timed and
printed apart, with the wall time including it. Target: full dissection within 1.10x of forward-only for resnet18
layer4, 2,000 images
at 224 px (segmentations at 112 px) on the CPU, at most 1.2 GB peak RSS; ``--device cuda``
also reports GPU utilisation.

``rounds`` > 1 interleaves the runs, forward only, dissection, forward only, dissection, ...,
forward only, in one process: each round's ratio is its dissection against the mean of the
forward-only runs on either side, and the median round is the figure (on a shared machine one
pair of runs drifts by more than the dissection's own cost). Only the last round renders.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tasks.engine.datasets import make_loader, open_dataset
from tasks.engine.dissect import DissectOptions, dissect
from tasks.engine.errors import EngineError
from tasks.engine.models import default_device, load_model
from tasks.engine.options import add_resource_arguments, default_workers
from benchmarks.peak_memory import peak_rss_mib
from tasks.engine.plan import parse_size

_CATEGORIES = ("object", "part", "scene", "texture")
_PIXEL_LABELS = {"object": 12, "part": 6}  # labels per pixel-labelled category
_IMAGE_LABELS = {"scene": 8, "texture": 5}  # labels per image-level category


def write_synthetic_broden(root: Path, n_images: int, size: int = 224, seg_size: int | None = None,
                           seed: int = 0) -> Path:
    """A Broden-format set of smooth colour images with blob-shaped object/part labels.

    Smooth images (low-frequency noise) decode at a realistic JPEG speed, unlike white noise.
    """
    seg_size = seg_size or size // 2
    rng = np.random.default_rng(seed)
    root = Path(root)
    (root / "images" / "synthetic").mkdir(parents=True, exist_ok=True)
    numbers: dict[str, list[int]] = {}
    labels = []
    n = 1
    for cat in _CATEGORIES:
        count = _PIXEL_LABELS.get(cat) or _IMAGE_LABELS[cat]
        numbers[cat] = list(range(n, n + count))
        labels += [(k, f"{cat}{k - n}", cat) for k in numbers[cat]]
        n += count
    yy, xx = np.mgrid[0:seg_size, 0:seg_size]
    rows = []
    for i in range(n_images):
        coarse = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(coarse).resize((size, size), Image.BICUBIC)
        name = f"synthetic/{i:06d}.jpg"
        image.save(root / "images" / name, quality=90)
        cells = {}
        for cat in _PIXEL_LABELS:
            seg = np.zeros((seg_size, seg_size), dtype=np.int64)
            for _ in range(int(rng.integers(1, 4))):  # a few elliptic blobs per image
                cy, cx = rng.uniform(0, seg_size, 2)
                ry, rx = rng.uniform(seg_size / 10, seg_size / 3, 2)
                seg[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = rng.choice(numbers[cat])
            rgb = np.zeros((seg_size, seg_size, 3), dtype=np.uint8)
            rgb[..., 0], rgb[..., 1] = seg % 256, seg // 256
            png = f"synthetic/{i:06d}_{cat}.png"
            Image.fromarray(rgb).save(root / "images" / png)
            cells[cat] = png
        for cat in _IMAGE_LABELS:
            cells[cat] = str(rng.choice(numbers[cat]))
        rows.append([name, "train", size, size, seg_size, seg_size, *(cells[c] for c in _CATEGORIES)])
    _write(root / "index.csv", ["image", "split", "ih", "iw", "sh", "sw", *_CATEGORIES], rows)
    _write(root / "category.csv", ["name", "first", "last", "count", "frequency"],
           [[c, numbers[c][0], numbers[c][-1], len(numbers[c]), n_images] for c in _CATEGORIES])
    _write(root / "label.csv", ["number", "name", "category", "frequency", "coverage", "syns"],
           [[k, name, f"{cat}(1)", 1, 1.0, ""] for k, name, cat in labels])
    for cat in _CATEGORIES:
        _write(root / f"c_{cat}.csv", ["code", "number", "name", "frequency", "coverage"],
               [[j + 1, k, name, 1, 1.0] for j, (k, name, c) in enumerate(x for x in labels if x[2] == cat)])
    return root


def _write(path: Path, header, rows) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


class PeakRss:
    """Peak resident memory of this process over a span: Linux lets a process reset its
    high-water mark (``/proc/self/clear_refs``), so forward-only and dissection peaks are
    measured apart in one run. Elsewhere the lifetime peak (ru_maxrss) is all there is."""

    def __init__(self) -> None:
        self.resettable = False
        try:
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
            self.resettable = True
        except OSError:
            pass

    mib = staticmethod(peak_rss_mib)


class GpuSampler:
    """Mean GPU utilisation (percent) over a span, sampled twice a second in a thread."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read(self) -> float | None:
        index = torch.device(self.device).index or 0
        try:
            return float(torch.cuda.utilization(index))  # needs pynvml (nvidia-ml-py)
        except Exception:  # no pynvml: ask nvidia-smi
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", f"--id={index}"],
                    capture_output=True, text=True, timeout=5,
                )
                return float(out.stdout.strip().splitlines()[0])
            except Exception:
                return None

    def __enter__(self) -> GpuSampler:
        if self.device.startswith("cuda"):
            def loop() -> None:
                while not self._stop.wait(0.5):
                    value = self._read()
                    if value is not None:
                        self.samples.append(value)

            self._thread = threading.Thread(target=loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def mean(self) -> float | None:
        return sum(self.samples) / len(self.samples) if self.samples else None


@dataclass
class BenchResult:
    images: int
    forward_s: float
    dissect_s: float
    dissect_timings: dict
    peak_rss_mib: float  # during the (first) dissection (lifetime peak where it cannot be reset)
    peak_cuda_mib: float | None
    forward_rss_mib: float | None = None
    plan_lines: list[str] = field(default_factory=list)
    spill_bytes: int = 0
    gpu_util_forward: float | None = None
    gpu_util_dissect: float | None = None
    device: str = "cpu"
    label: str = ""
    forward_runs: tuple[float, ...] = ()  # the forward-only runs before and after the dissection
    round_ratios: tuple[float, ...] = ()  # per interleaved round: results / mean of its two forward runs
    round_rss_mib: tuple[float, ...] = ()  # per round: the dissection's peak RSS
    forward_cpu_runs: tuple[float, ...] = ()  # CPU seconds (this process and its reaped children) per forward run
    dissect_cpu_runs: tuple[float, ...] = ()  # CPU seconds per dissection

    @property
    def cpu_ratio(self) -> float | None:
        """The dissection's CPU seconds over the mean forward run's: the cost ratio on a shared machine,
        where other jobs stretch wall time unevenly between runs but hardly change a run's CPU seconds."""
        if not self.forward_cpu_runs or not self.dissect_cpu_runs:
            return None
        return float(np.median(self.dissect_cpu_runs)) / (sum(self.forward_cpu_runs) / len(self.forward_cpu_runs))

    @property
    def results_s(self) -> float:
        """Seconds until every result but the pictures was on disk."""
        return self.dissect_timings.get("results", self.dissect_s)

    @property
    def ratio(self) -> float:
        if len(self.round_ratios) > 1:
            return float(np.median(self.round_ratios))
        return self.results_s / self.forward_s

    def lines(self) -> list[str]:
        out = [
            f"{self.label}images: {self.images} on {self.device}",
            f"forward only (decode + forward): {self.forward_s:.2f} s ({self.images / self.forward_s:.1f} images/s)"
            + ("" if len(self.forward_runs) < 2 else
               " = mean of " + ", ".join(f"{t:.2f}" for t in self.forward_runs) + " s (before, between and after the "
                                                                                  "dissections)"),
            f"dissection (labels, thresholds, top-k, tallies stored): {self.results_s:.2f} s "
            f"({self.images / self.results_s:.1f} images/s)",
            f"ratio to the forward pass: {self.ratio:.3f} (target <= 1.10)"
            + ("" if len(self.round_ratios) < 2 else
               f", the median of {len(self.round_ratios)} interleaved rounds: "
               + ", ".join(f"{r:.3f}" for r in self.round_ratios)),
            *([] if self.cpu_ratio is None else [
                "CPU time (process and its loader workers): forward only "
                + ", ".join(f"{t:.1f}" for t in self.forward_cpu_runs) + " s; dissection "
                + ", ".join(f"{t:.1f}" for t in self.dissect_cpu_runs) + f" s; ratio {self.cpu_ratio:.3f} "
                "(rendering included when it is on)"]),
            f"render stage (exemplar pictures, after the results): {self.dissect_timings.get('render', 0.0):.2f} s",
            f"with rendering: {self.dissect_s:.2f} s wall, {self.dissect_s / self.forward_s:.3f}x the forward pass",
            "dissection stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in self.dissect_timings.items()),
            f"peak memory (RSS) during the dissection: {self.peak_rss_mib:.0f} MiB (target <= 1200)"
            + ("" if self.forward_rss_mib is None else f"; forward only: {self.forward_rss_mib:.0f} MiB")
            + ("" if len(self.round_rss_mib) < 2 else
               "; per round " + ", ".join(f"{r:.0f}" for r in self.round_rss_mib)
               + " MiB (a round's mark starts from what earlier runs left with the allocator)"),
            f"spill on disk: {self.spill_bytes / 1e6:.1f} MB",
        ]
        if self.gpu_util_dissect is not None or self.gpu_util_forward is not None:
            fmt = lambda v: "n/a" if v is None else f"{v:.0f}%"  # noqa: E731
            out.append(f"GPU utilisation: forward only {fmt(self.gpu_util_forward)}, dissection "
                       f"{fmt(self.gpu_util_dissect)}")
        if self.peak_cuda_mib is not None:
            out.append(f"peak CUDA memory: {self.peak_cuda_mib:.0f} MiB")
        out += self.plan_lines
        return out


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its children that have ended (loader workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def forward_only(model, dataset, *, batch_size: int, device: str, num_workers: int = 0,
                 channels_last: bool = False) -> float:
    """Seconds to load, normalise and forward every image once (no hooks), with the loader
    settings the dissection uses (workers, pinned memory on CUDA, memory format)."""
    cuda = device.startswith("cuda")
    loader = make_loader(dataset, batch_size=batch_size, num_workers=num_workers, pin_memory=cuda)
    model.to(device).eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    if channels_last:
        model.to(memory_format=fmt)
    t0 = time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            model(batch.images.to(device, non_blocking=True).contiguous(memory_format=fmt))
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t0


@dataclass(frozen=True)
class BenchSet:
    """The synthetic Broden-format set a bench runs on; written once into `data` when given, then reused."""

    images: int = 2000
    size: int = 224
    seg_size: int | None = None  # default: size / 2
    data: str | None = None


def run_bench(
    options: DissectOptions,
    *,
    bench_set: BenchSet = BenchSet(),
    model: str = "resnet18",
    threads: int | None = None,
    workdir: str | None = None,
    keep: bool = False,
    rounds: int = 1,
) -> BenchResult:
    """Forward-only runs against `dissect(options)` on the synthetic set (only the last round renders)."""
    images, size, seg_size, data = bench_set.images, bench_set.size, bench_set.seg_size, bench_set.data
    batch_size, device, num_workers = options.batch_size, options.device, options.num_workers
    channels_last = options.channels_last
    if threads:
        torch.set_num_threads(threads)
    tmp = Path(tempfile.mkdtemp(prefix="unitcrowd-bench-", dir=workdir))
    try:
        root = Path(data) if data else tmp / "data"
        if not (root / "index.csv").is_file():
            # In a child process: the writer's memory stays with this process's allocator otherwise and
            # lifts the measured peaks (a 2,000-image set: 1451 MiB against 1139 with the set on disk).
            writer = multiprocessing.get_context("spawn").Process(
                target=write_synthetic_broden, args=(root, images, size, seg_size))
            writer.start()
            writer.join()
            if writer.exitcode != 0 or not (root / "index.csv").is_file():
                raise EngineError(f"writing the synthetic set to {root} failed (exit {writer.exitcode})")
        dataset = open_dataset(f"broden:{root}")
        images = len(dataset)
        net = load_model(model, None)
        # A warm-up batch, so neither timed run pays for first-call allocations.
        with torch.inference_mode():
            net.to(device).eval()(torch.zeros(min(batch_size, images), 3, size, size, device=device))
        cuda = device.startswith("cuda")
        peak = PeakRss()
        cpu0 = cpu_seconds()
        with GpuSampler(device) as gpu_fwd:
            fwd = forward_only(net, dataset, batch_size=batch_size, device=device, num_workers=num_workers,
                               channels_last=channels_last)
        forward_cpu, dissect_cpu = [cpu_seconds() - cpu0], []
        forward_rss = PeakRss.mib() if peak.resettable else None
        forwards, ratios, peaks = [fwd], [], []
        cuda_peak = None
        rounds = max(1, rounds)
        for round_ in range(rounds):
            last = round_ == rounds - 1
            round_options = replace(options, render=options.render and last, progress_bar=False)
            out = tmp / f"out{round_}"
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            PeakRss()  # reset the high-water mark: the dissection's own peak
            t0, cpu0 = time.perf_counter(), cpu_seconds()
            with GpuSampler(device) as gpu_dis:
                result = dissect(net, dataset, round_options, out)
            full = time.perf_counter() - t0
            dissect_cpu.append(cpu_seconds() - cpu0)
            peaks.append(PeakRss.mib())
            if cuda:
                cuda_peak = max(cuda_peak or 0.0, torch.cuda.max_memory_allocated() / 2**20)
            # Forward only again: on a shared machine the load drifts during a run, and the mean of
            # the runs before and after a dissection brackets it fairly.
            cpu0 = cpu_seconds()
            with GpuSampler(device) as gpu_fwd2:
                forwards.append(forward_only(net, dataset, batch_size=batch_size, device=device,
                                             num_workers=num_workers, channels_last=channels_last))
            forward_cpu.append(cpu_seconds() - cpu0)
            ratios.append(result.timings.get("results", full) / ((forwards[-2] + forwards[-1]) / 2))
            if not last:
                shutil.rmtree(out, ignore_errors=True)
        util = [u for u in (gpu_fwd.mean, gpu_fwd2.mean) if u is not None]
        return BenchResult(
            images, sum(forwards) / len(forwards), full, result.timings, peaks[0], cuda_peak, forward_rss,
            result.plan["lines"],
            result.plan["measured_spill_bytes"], sum(util) / len(util) if util else None, gpu_dis.mean, device,
            f"{model} {','.join(options.layers)}: ", tuple(forwards), tuple(ratios), tuple(peaks),
            tuple(forward_cpu), tuple(dissect_cpu),
        )
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main(args: argparse.Namespace) -> int:
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise EngineError("--device cuda was asked but no CUDA device is available; use --device cpu")
    options = DissectOptions(
        layers=[x.strip() for x in args.layers.split(",") if x.strip()], top_k=args.top_k, batch_size=args.batch_size,
        device=args.device, num_workers=args.workers, render=not args.no_render, cache_dtype=args.cache_dtype,
        disk_budget=parse_size(args.disk_budget), memory_budget=parse_size(args.memory_budget), spill=args.spill,
        channels_last=args.channels_last, threshold_method=args.threshold_method,
    )
    result = run_bench(options, bench_set=BenchSet(args.images, args.size, args.seg_size, args.data), model=args.model,
                       threads=args.threads, workdir=args.workdir, keep=args.keep, rounds=args.rounds)
    print("\n".join(result.lines()))
    return 0


def get_args_parser() -> argparse.ArgumentParser:
    b = argparse.ArgumentParser(prog="python -m benchmarks.engine_bench",
                                description="forward-only vs full dissection timing on synthetic data")
    b.add_argument("--images", type=int, default=2000)
    b.add_argument("--size", type=int, default=224)
    b.add_argument("--seg-size", type=int, default=None, help="segmentation size (default: size / 2)")
    b.add_argument("--model", default="resnet18")
    b.add_argument("--layers", default="layer4")
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--workers", type=int, default=default_workers(), help="DataLoader worker processes (both runs)")
    b.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    b.add_argument("--top-k", type=int, default=10)
    b.add_argument("--rounds", type=int, default=1,
                   help="interleaved forward-only / dissection rounds; the ratio is the median round's")
    b.add_argument("--no-render", action="store_true")
    b.add_argument("--data", default=None, help="reuse (or write once) the synthetic set in this folder")
    b.add_argument("--workdir", default=None, help="where the outputs and spill go (default: the temp folder)")
    add_resource_arguments(b)
    b.add_argument("--keep", action="store_true", help="keep the synthetic data and outputs")
    b.add_argument("--device", default=default_device())
    return b


if __name__ == "__main__":
    try:
        sys.exit(main(get_args_parser().parse_args()))
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
