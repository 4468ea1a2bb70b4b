"""What a dissection leaves behind: per-layer results and files (thresholds.npy, topk.csv,
tally.csv, summary.json), and the render stage that draws the exemplar pictures afterwards.

Files under ``out_dir/<layer>/`` number units from 1 (tally.csv, topk.csv, exemplar
folders); the Python objects number them from 0.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .collect import thresholds_of, vocabulary_of
from .datasets import ProbeDataset
from .iou import INTERPRETABLE_IOU, IouCounts, IouTable, UnitLabel, Vocabulary, write_tally
from .options import DissectOptions, Progress
from .render import Pictures, render_layer
from .runningstats import RunningTopK


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
    plan: dict | None = None  # whole runs: the plan (DissectPlan.to_json) and the measured spill


def _summary_of(name: str, labels: list[UnitLabel] | None, vocab: Vocabulary | None, num_units: int, stats: dict,
                options: DissectOptions) -> dict:
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


def render_layer_of(dataset, options: DissectOptions, stats: dict, name: str, get_maps, out_dir: Path, progress=None):
    """Exemplar pictures of one layer (the thresholds and top images are final after the sweep)."""
    k = options.render_k or options.top_k
    indices = RunningTopK.from_state_dict(stats["layers"][name]["topk"]).result()[1].numpy()
    return render_layer(
        dataset.load_rgb, get_maps(name, indices[:, :k]), indices, thresholds_of(stats, options)[name], out_dir, name,
        pictures=Pictures(render_k=k, style=options.highlight, fmt=options.image_format), progress=progress,
    )


def write_results(dataset, options: DissectOptions, stats: dict, counts: dict | None, out_dir: Path,
                  timings: dict) -> DissectionResult:
    """Every layer's thresholds.npy, topk.csv, tally.csv and result, without pictures."""
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    vocab = vocabulary_of(dataset)
    thresholds = thresholds_of(stats, options)
    results: dict[str, LayerResult] = {}
    for name in (n for n in options.layers if n in stats["layers"]):
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
        result = LayerResult(name, entry["num_units"], thresholds[name], indices, scores, iou,
                             labels if labels is not None else [])
        result.summary = _summary_of(name, labels, vocab, entry["num_units"], stats, options)
        results[name] = result
    timings["outputs"] = time.perf_counter() - t0
    return DissectionResult(results, timings, list(stats["skipped"]))


def render_results(result: DissectionResult, dataset, options: DissectOptions, stats: dict, out_dir: Path, get_maps,
                   progress: Progress = None) -> None:
    """The render stage: every layer's exemplar pictures and strips, added to ``result``.

    ``get_maps(layer, topk_indices)`` gives ``get_map(unit, rank, image_index)`` for that layer.
    """
    started = time.perf_counter()
    names = list(result.layers)
    for li, name in enumerate(names):
        done = render_layer_of(
            dataset, options, stats, name, get_maps, out_dir,
            None if progress is None else (lambda f, li=li: progress("render", (li + f) / len(names))),
        )
        layer = result.layers[name]
        layer.exemplars, layer.plain, layer.strips = done.exemplars, done.plain, done.strips
    result.timings["render"] = result.timings.get("render", 0.0) + time.perf_counter() - started


def write_outputs(dataset, options: DissectOptions, stats: dict, counts: dict | None, out_dir: Path, get_maps,
                  progress: Progress, timings: dict) -> DissectionResult:
    """``write_results`` then, when ``options.render`` and maps are at hand, ``render_results``."""
    result = write_results(dataset, options, stats, counts, out_dir, timings)
    if options.render and get_maps is not None:
        render_results(result, dataset, options, stats, out_dir, get_maps, progress)
    return result


def write_summaries(out_dir: Path, result: DissectionResult) -> None:
    for layer in result.layers.values():
        layer.summary["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
        layer.summary["skipped_image_names"] = result.skipped_images
        (out_dir / layer.name / "summary.json").write_text(json.dumps(layer.summary, indent=2))
