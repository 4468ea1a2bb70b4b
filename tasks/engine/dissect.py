"""The dissection driver: one sweep for top images and thresholds, IoU counts, outputs.

``dissect`` runs a whole job with a single forward sweep: each layer's feature maps are
spilled to a disk memmap while the running statistics update, so the IoU counts and the
exemplar pictures need no second forward pass. The shard API (``collect_stats`` ->
``merge_stats`` -> ``collect_counts`` -> ``merge_counts`` -> ``finalize``) gives the same
numbers when the platform splits the images over several workers.

Files under ``out_dir/<layer>/`` number units from 1 (tally.csv, topk.csv, exemplar
folders); the Python objects number them from 0.
"""

from __future__ import annotations

import contextlib
import csv
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .capture import LayerCapture
from .datasets import Batch, ProbeDataset, make_loader
from .dissect_alignment import AlignmentCollector, wants_alignment
from .errors import EngineError
from .iou import INTERPRETABLE_IOU, IOU_RULES, IouCounts, IouTable, UnitLabel, Vocabulary, write_tally
from .render import HIGHLIGHTS, render_layer
from .runningstats import RunningQuantile, RunningTopK

__all__ = [
    "DissectOptions", "LayerResult", "UnitLabel", "DissectionResult", "dissect",
    "collect_stats", "merge_stats", "collect_counts", "merge_counts", "finalize",
]

Progress = Callable[[str, float], None] | None


@dataclass
class DissectOptions:
    layers: list[str]
    top_k: int = 10
    quantile: float = 0.005
    iou_rule: str = "lite"
    batch_size: int = 32
    device: str = "cpu"
    thresholds: dict[str, np.ndarray] | None = None
    render: bool = True
    render_k: int | None = None  # exemplars rendered per unit (default top_k)
    highlight: str = "overlay"  # or "outline"
    # Additions beyond the contract:
    num_workers: int = 0  # DataLoader workers decoding images
    cache_dtype: str = "float32"  # feature-map spill of dissect(); float16 halves the disk
    cache_dir: str | None = None  # where to spill (default: a temporary folder in out_dir)
    image_format: str = "jpg"
    progress_bar: bool = True

    def validate(self) -> None:
        if not self.layers:
            raise EngineError("no layer to dissect: give at least one, e.g. layers=['layer4']")
        if self.top_k < 1:
            raise EngineError(f"top_k must be at least 1, got {self.top_k}")
        if not 0.0 < self.quantile < 1.0:
            raise EngineError(f"quantile must lie strictly between 0 and 1, got {self.quantile} (NetDissect: 0.005)")
        if self.iou_rule not in IOU_RULES:
            raise EngineError(f"unknown IoU rule '{self.iou_rule}'; choose one of {', '.join(IOU_RULES)}")
        if self.highlight not in HIGHLIGHTS:
            raise EngineError(f"unknown highlight '{self.highlight}'; choose one of {', '.join(HIGHLIGHTS)}")
        if self.batch_size < 1:
            raise EngineError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.cache_dtype not in ("float32", "float16"):
            raise EngineError(f"cache_dtype must be float32 or float16, got {self.cache_dtype}")


@dataclass
class LayerResult:
    name: str
    num_units: int
    thresholds: np.ndarray  # float [U]
    topk_indices: np.ndarray  # int [U, k] dataset indices, rank order
    topk_scores: np.ndarray  # float [U, k]
    iou: np.ndarray | None  # float [U, n_concepts] (None for unlabelled data)
    labels: list[UnitLabel]  # per unit (0-based here; tally.csv writes 1-based)
    exemplars: dict[int, list[str]] = field(default_factory=dict)
    plain: dict[int, list[str]] = field(default_factory=dict)
    strips: dict[int, str] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)


@dataclass
class DissectionResult:
    layers: dict[str, LayerResult]
    timings: dict[str, float]
    skipped_images: list[str]


# -- sweeping the dataset ----------------------------------------------------------------


def _vocabulary(dataset: ProbeDataset) -> Vocabulary | None:
    if not dataset.categories or not dataset.concepts:
        return None  # an unlabelled dataset: top images and thresholds only
    return Vocabulary.from_concepts(dataset.concepts, dataset.categories)


def _sweep(
    model: nn.Module, dataset: ProbeDataset, options: DissectOptions, indices, stage: str, progress: Progress
) -> Iterator[tuple[Batch, dict[str, torch.Tensor]]]:
    """Forward every batch once, yielding the batch and its captured layer outputs."""
    device = torch.device(options.device)
    model.to(device).eval()
    loader = make_loader(dataset, batch_size=options.batch_size, indices=indices, num_workers=options.num_workers)
    total = max(1, loader.num_images)
    done = 0
    with LayerCapture(model, options.layers) as capture, torch.inference_mode():
        for batch in tqdm(loader, desc=stage, unit="batch", disable=not options.progress_bar, leave=False):
            outputs = capture.run(batch.images.to(device, non_blocking=True))
            yield batch, outputs
            done += len(batch) + len(batch.skipped)
            if progress is not None:
                progress(stage, min(1.0, done / total))


class _StatsCollector:
    """Running top-k and quantile per layer (quantile skipped where thresholds are given)."""

    def __init__(self, options: DissectOptions, expected_images: int) -> None:
        self.options = options
        self.expected_images = expected_images
        self.layers: dict[str, dict] = {}
        self.images = 0
        self.skipped: list[int] = []

    def add(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> None:
        self.images += len(batch)
        self.skipped += batch.skipped
        for name, acts in outputs.items():
            entry = self.layers.get(name)
            if entry is None:
                fixed = (self.options.thresholds or {}).get(name)
                if fixed is not None and len(fixed) != acts.shape[1]:
                    raise EngineError(
                        f"the thresholds given for layer {name} have {len(fixed)} values but the layer has "
                        f"{acts.shape[1]} units; use thresholds computed for this model and layer"
                    )
                entry = self.layers[name] = {
                    "num_units": int(acts.shape[1]),
                    "topk": RunningTopK(self.options.top_k),
                    "quantile": None
                    if fixed is not None
                    else RunningQuantile(self.options.quantile, expected_images=self.expected_images),
                }
            entry["topk"].add(acts, batch.indices)
            if entry["quantile"] is not None:
                entry["quantile"].add(acts)

    def state(self, dataset: ProbeDataset) -> dict:
        return {
            "kind": "dissect-stats",
            "top_k": self.options.top_k,
            "quantile": self.options.quantile,
            "images": self.images,
            "skipped": [dataset.image_name(i) for i in self.skipped],
            "layers": {
                name: {
                    "num_units": e["num_units"],
                    "topk": e["topk"].state_dict(),
                    "quantile": None if e["quantile"] is None else e["quantile"].state_dict(),
                }
                for name, e in self.layers.items()
            },
        }


def _check_kind(state: dict, kind: str) -> None:
    if not isinstance(state, dict) or state.get("kind") != kind:
        raise EngineError(f"expected a '{kind}' state (from {kind.replace('dissect-', 'collect_')}), got something else")


def merge_stats(states: list[dict]) -> dict:
    """Combine ``collect_stats`` shards (disjoint image sets) into the single-pass state."""
    if not states:
        raise EngineError("merge_stats needs at least one shard state")
    for s in states:
        _check_kind(s, "dissect-stats")
    first = states[0]
    layers = {}
    for name, entry in first["layers"].items():
        topk = RunningTopK.from_state_dict(entry["topk"])
        quant = None if entry["quantile"] is None else RunningQuantile.from_state_dict(entry["quantile"])
        for other in states[1:]:
            if name not in other["layers"]:
                continue  # a shard whose images were all unreadable
            o = other["layers"][name]
            topk.merge(RunningTopK.from_state_dict(o["topk"]))
            if quant is not None:
                quant.merge(RunningQuantile.from_state_dict(o["quantile"]))
        layers[name] = {
            "num_units": entry["num_units"],
            "topk": topk.state_dict(),
            "quantile": None if quant is None else quant.state_dict(),
        }
    for other in states[1:]:
        for name, entry in other["layers"].items():
            layers.setdefault(name, entry)
    return {
        **first,
        "images": sum(s["images"] for s in states),
        "skipped": [name for s in states for name in s["skipped"]],
        "layers": layers,
    }


def _thresholds(stats: dict, options: DissectOptions) -> dict[str, np.ndarray]:
    out = {}
    for name, entry in stats["layers"].items():
        fixed = (options.thresholds or {}).get(name)
        if fixed is not None:
            out[name] = np.asarray(fixed, dtype=np.float32)
        elif entry["quantile"] is None:
            raise EngineError(f"no thresholds for layer {name}: the stats were collected with thresholds given")
        else:
            out[name] = RunningQuantile.from_state_dict(entry["quantile"]).result().numpy().astype(np.float32)
    return out


@contextlib.contextmanager
def _one_cpu_thread():
    """The counting ops are many and mid-sized: on the CPU, torch's thread team costs more
    in hand-offs than it gains (measured 3-6x slower with 2 threads on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class _CountsCollector:
    def __init__(self, options: DissectOptions, vocab: Vocabulary | None, thresholds: dict[str, np.ndarray]) -> None:
        self.options = options
        self.vocab = vocab
        self.thresholds = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in thresholds.items()}
        self.counts: dict[str, IouCounts] = {}
        self.images = 0
        self.skipped: list[int] = []

    def add(self, outputs: dict[str, torch.Tensor], pixel_labels: torch.Tensor, image_labels: torch.Tensor) -> None:
        self.images += len(pixel_labels)
        if self.vocab is None:
            return
        with _one_cpu_thread():
            for name, acts in outputs.items():
                counts = self.counts.get(name)
                if counts is None:
                    counts = self.counts[name] = IouCounts(acts.shape[1], self.vocab, self.options.iou_rule, acts.device)
                counts.add(acts, self.thresholds[name], pixel_labels, image_labels)

    def state(self, dataset: ProbeDataset) -> dict:
        return {
            "kind": "dissect-counts",
            "rule": self.options.iou_rule,
            "images": self.images,
            "skipped": [dataset.image_name(i) for i in self.skipped],
            "layers": {name: c.state_dict() for name, c in self.counts.items()},
        }


def merge_counts(states: list[dict]) -> dict:
    """Sum ``collect_counts`` shards: every count is a plain sum over images."""
    if not states:
        raise EngineError("merge_counts needs at least one shard state")
    for s in states:
        _check_kind(s, "dissect-counts")
    layers: dict[str, dict] = {}
    for s in states:
        if s["rule"] != states[0]["rule"]:
            raise EngineError("counts collected under different IoU rules cannot be merged")
        for name, entry in s["layers"].items():
            if name not in layers:
                layers[name] = {k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in entry.items()}
                continue
            acc = layers[name]
            for key in ("truth", "intersect", "activation"):
                acc[key] = acc[key] + entry[key]
            acc["images"] += entry["images"]
    return {
        **states[0],
        "images": sum(s["images"] for s in states),
        "skipped": [n for s in states for n in s["skipped"]],
        "layers": layers,
    }


# -- the shard API -------------------------------------------------------------------------


def collect_stats(model, dataset, options: DissectOptions, *, indices=None, progress: Progress = None) -> dict:
    """Top-k and threshold statistics of the images in ``indices`` (default: all)."""
    options.validate()
    # Sized for the whole dataset so that shards merge into the exact threshold.
    collector = _StatsCollector(options, expected_images=len(dataset))
    for batch, outputs in _sweep(model, dataset, options, indices, "stats", progress):
        collector.add(batch, outputs)
    return collector.state(dataset)


def collect_counts(model, dataset, options: DissectOptions, stats: dict, *, indices=None, progress: Progress = None) -> dict:
    """IoU counts of the images in ``indices`` under the thresholds of merged ``stats``."""
    options.validate()
    _check_kind(stats, "dissect-stats")
    collector = _CountsCollector(options, _vocabulary(dataset), _thresholds(stats, options))
    for batch, outputs in _sweep(model, dataset, options, indices, "counts", progress):
        collector.skipped += batch.skipped
        collector.add(outputs, batch.pixel_labels, batch.image_labels)
    return collector.state(dataset)


def _forward_maps(model, dataset, options: DissectOptions, stats: dict, render_k: int, progress: Progress):
    """get_map for rendering after a sharded run: forward only the top images again."""
    wanted: dict[int, list[tuple[str, int, int]]] = {}
    for name, entry in stats["layers"].items():
        indices = RunningTopK.from_state_dict(entry["topk"]).result()[1].numpy()
        for u in range(indices.shape[0]):
            for r in range(min(render_k, indices.shape[1])):
                wanted.setdefault(int(indices[u, r]), []).append((name, u, r))
    maps: dict[tuple[str, int, int], torch.Tensor] = {}
    for batch, outputs in _sweep(model, dataset, options, sorted(wanted), "maps", progress):
        for row, index in enumerate(batch.indices.tolist()):
            for name, u, r in wanted[index]:
                maps[(name, u, r)] = outputs[name][row, u].cpu().clone()
    return lambda name, indices: (lambda u, r, index: maps[(name, u, r)])


def finalize(model, dataset, options: DissectOptions, stats: dict, counts: dict | None, out_dir, *, progress: Progress = None) -> DissectionResult:
    """Write every output from merged stats and counts (forwards only the top images again)."""
    options.validate()
    _check_kind(stats, "dissect-stats")
    started = time.perf_counter()
    render_k = options.render_k or options.top_k
    get_maps = _forward_maps(model, dataset, options, stats, render_k, progress) if options.render else None
    timings = {"top_image_maps": time.perf_counter() - started}
    result = _write_outputs(dataset, options, stats, counts, Path(out_dir), get_maps, progress, timings)
    result.timings["total"] = time.perf_counter() - started
    _write_summaries(Path(out_dir), result)
    return result


# -- the whole run ---------------------------------------------------------------------------


class _FeatureCache:
    """Spill of each layer's maps for every swept image (np.memmap), plus the batch labels.

    Maps live in one memmap per (layer, image size), rows in sweep order; labels go to one
    file of consecutive .npy records, read back in the same order for the counting pass.
    """

    def __init__(self, root: Path, dataset: ProbeDataset, indices: Sequence[int], dtype: str) -> None:
        self.root = root
        self.dataset = dataset
        self.dtype = np.dtype(dtype)
        self.group_sizes: dict[tuple, int] = {}
        for i in indices:
            key = dataset.size_key(int(i))
            self.group_sizes[key] = self.group_sizes.get(key, 0) + 1
        self.maps: dict[tuple[str, tuple], np.memmap] = {}
        self.filled: dict[tuple, int] = {}
        self.where: dict[int, tuple[tuple, int]] = {}  # dataset index -> (size key, row)
        self.batches: list[tuple[tuple, int, int]] = []  # (size key, first row, rows)
        self.labels_file = open(root / "labels.npy-records", "wb")

    def add(self, batch: Batch, outputs: dict[str, torch.Tensor]) -> None:
        key = self.dataset.size_key(int(batch.indices[0]))
        start = self.filled.get(key, 0)
        n = len(batch)
        for name, acts in outputs.items():
            mm = self.maps.get((name, key))
            if mm is None:
                path = self.root / f"maps-{len(self.maps)}.npy"
                mm = np.lib.format.open_memmap(path, mode="w+", dtype=self.dtype, shape=(self.group_sizes[key], *acts.shape[1:]))
                self.maps[(name, key)] = mm
            mm[start : start + n] = acts.cpu().numpy().astype(self.dtype, copy=False)
        for row, index in enumerate(batch.indices.tolist()):
            self.where[index] = (key, start + row)
        self.filled[key] = start + n
        self.batches.append((key, start, n))
        pix = batch.pixel_labels
        small = pix.numel() == 0 or int(pix.max()) < 32768
        np.save(self.labels_file, pix.numpy().astype(np.int16 if small else np.int32))
        np.save(self.labels_file, batch.image_labels.numpy())

    def replay(self, layers: list[str], device) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]]:
        self.labels_file.close()
        with open(self.root / "labels.npy-records", "rb") as fh:
            for key, start, n in self.batches:
                pix = torch.from_numpy(np.load(fh).astype(np.int64))
                img = torch.from_numpy(np.load(fh))
                outputs = {
                    name: torch.from_numpy(np.asarray(self.maps[(name, key)][start : start + n], dtype=np.float32)).to(device)
                    for name in layers
                }
                yield outputs, pix, img

    def get_map(self, name: str, topk_indices: np.ndarray) -> Callable[[int, int, int], torch.Tensor]:
        """Maps of each unit's top images, read once per image in file order."""
        wanted: dict[int, list[tuple[int, int]]] = {}
        for u in range(topk_indices.shape[0]):
            for r in range(topk_indices.shape[1]):
                wanted.setdefault(int(topk_indices[u, r]), []).append((u, r))
        maps: dict[tuple[int, int], torch.Tensor] = {}
        for index in sorted(wanted, key=lambda i: self.where[i]):
            key, row = self.where[index]
            units = np.asarray(self.maps[(name, key)][row], dtype=np.float32)  # [U, h, w]
            for u, r in wanted[index]:
                maps[(u, r)] = torch.from_numpy(units[u].copy())
        return lambda u, r, index: maps[(u, r)]

    def close(self) -> None:
        if not self.labels_file.closed:
            self.labels_file.close()
        self.maps.clear()  # drop memmaps before the folder is removed


def dissect(model, dataset, options: DissectOptions, out_dir, *, progress: Progress = None) -> DissectionResult:
    """Dissect ``options.layers`` of ``model`` on ``dataset``; write outputs under ``out_dir``.

    One forward sweep: top images and thresholds update while feature maps spill to disk;
    the IoU counts and exemplar pictures then read the spill.
    """
    options.validate()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    indices = list(range(len(dataset)))
    cache_root = Path(tempfile.mkdtemp(prefix=".cache-", dir=options.cache_dir or out_dir))
    cache = _FeatureCache(cache_root, dataset, indices, options.cache_dtype)
    try:
        stats_c = _StatsCollector(options, expected_images=len(indices))
        align_c = AlignmentCollector() if wants_alignment(dataset) else None
        for batch, outputs in _sweep(model, dataset, options, indices, "sweep", progress):
            stats_c.add(batch, outputs)
            cache.add(batch, outputs)
            if align_c is not None:
                align_c.add(batch, outputs)
        stats = stats_c.state(dataset)
        if not stats["layers"]:
            raise EngineError(f"no image of {dataset.root} could be read; nothing to dissect")
        t1 = time.perf_counter()
        vocab = _vocabulary(dataset)
        counts = None
        if vocab is not None:
            counts_c = _CountsCollector(options, vocab, _thresholds(stats, options))
            replay = cache.replay(list(stats["layers"]), torch.device(options.device))
            for k, (outputs, pix, img) in enumerate(replay):
                counts_c.add(outputs, pix, img)
                if progress is not None:
                    progress("counts", (k + 1) / len(cache.batches))
            counts = counts_c.state(dataset)
        t2 = time.perf_counter()
        timings = {"sweep": t1 - t0, "counts": t2 - t1}
        result = _write_outputs(dataset, options, stats, counts, out_dir, cache.get_map, progress, timings)
        if align_c is not None:
            align_c.write(dataset, out_dir)
    finally:
        cache.close()
        shutil.rmtree(cache_root, ignore_errors=True)
    result.timings["total"] = time.perf_counter() - t0
    _write_summaries(out_dir, result)
    return result


# -- outputs ---------------------------------------------------------------------------------


def _summary_of(name: str, labels: list[UnitLabel] | None, vocab: Vocabulary | None, num_units: int, stats: dict, options: DissectOptions) -> dict:
    summary: dict = {
        "layer": name,
        "units": num_units,
        "images": stats["images"],
        "skipped_images": len(stats["skipped"]),
        "quantile": options.quantile,
        "thresholds_from": "given" if (options.thresholds or {}).get(name) is not None else "quantile",
        "top_k": options.top_k,
        "unit_numbering": "files (tally.csv, topk.csv, exemplars) number units from 1; ranks from 0",
    }
    if labels is None or vocab is None:
        summary.update(labelled=False, interpretable_units=None, unique_concepts=None)
        return summary
    detectors = [lab for lab in labels if lab.score > INTERPRETABLE_IOU]
    concepts = {(lab.category, lab.label) for lab in detectors}
    summary.update(
        labelled=True,
        iou_rule=options.iou_rule,
        interpretable_threshold=INTERPRETABLE_IOU,
        interpretable_units=len(detectors),
        unique_concepts=len(concepts),
        # Bar chart of NetDissect: unique detectors (concepts) per category.
        unique_detectors_per_category={c: sum(1 for cat, _ in concepts if cat == c) for c in vocab.categories},
        units_per_category={c: sum(1 for lab in detectors if lab.category == c) for c in vocab.categories},
        line=f"{len(detectors)}/{num_units} units covering {len(concepts)} concepts with IoU >= {INTERPRETABLE_IOU}",
    )
    return summary


def _write_topk(path: Path, dataset: ProbeDataset, indices: np.ndarray, scores: np.ndarray) -> None:
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["unit", "rank", "image", "score", "image_name"])  # unit 1-based, rank 0-based
        for u in range(indices.shape[0]):
            for r in range(indices.shape[1]):
                index = int(indices[u, r])
                writer.writerow([u + 1, r, index, repr(float(scores[u, r])), dataset.image_name(index)])


def _write_outputs(dataset, options, stats, counts, out_dir: Path, get_maps, progress: Progress, timings: dict) -> DissectionResult:
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    vocab = _vocabulary(dataset)
    thresholds = _thresholds(stats, options)
    results: dict[str, LayerResult] = {}
    render_time = 0.0
    layer_names = [n for n in options.layers if n in stats["layers"]]
    for li, name in enumerate(layer_names):
        entry = stats["layers"][name]
        layer_dir = out_dir / name
        layer_dir.mkdir(parents=True, exist_ok=True)
        scores_t, indices_t = RunningTopK.from_state_dict(entry["topk"]).result()
        scores, indices = scores_t.numpy(), indices_t.numpy()
        np.save(layer_dir / "thresholds.npy", thresholds[name])
        _write_topk(layer_dir / "topk.csv", dataset, indices, scores)
        iou, labels = None, None
        if vocab is not None and counts is not None and name in counts["layers"]:
            ic = IouCounts(entry["num_units"], vocab, options.iou_rule)
            ic.load_state_dict(counts["layers"][name])
            table = IouTable.from_counts(ic)
            labels = write_tally(layer_dir / "tally.csv", table)
            iou = table.iou
        result = LayerResult(
            name, entry["num_units"], thresholds[name], indices, scores, iou,
            labels if labels is not None else [],
        )
        if options.render and get_maps is not None:
            r0 = time.perf_counter()
            done = render_layer(
                dataset.load_rgb, get_maps(name, indices[:, : options.render_k or options.top_k]), indices, thresholds[name], out_dir, name,
                render_k=options.render_k or options.top_k, style=options.highlight, fmt=options.image_format,
                progress=None if progress is None else (lambda f, li=li: progress("render", (li + f) / len(layer_names))),
            )
            render_time += time.perf_counter() - r0
            result.exemplars, result.plain, result.strips = done.exemplars, done.plain, done.strips
        result.summary = _summary_of(name, labels, vocab, entry["num_units"], stats, options)
        results[name] = result
    timings["render"] = render_time
    timings["outputs"] = time.perf_counter() - t0
    return DissectionResult(results, timings, list(stats["skipped"]))


def _write_summaries(out_dir: Path, result: DissectionResult) -> None:
    for layer in result.layers.values():
        layer.summary["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
        layer.summary["skipped_image_names"] = result.skipped_images
        (out_dir / layer.name / "summary.json").write_text(json.dumps(layer.summary, indent=2))
