"""Dissection of a generator's units (GAN Dissection, Bau et al. 2019, section 3.1).

Sample z, capture layer r, segment the generated images, then count exactly as classifier
dissection does: per-unit threshold T[u] = top ``quantile`` of r_u at feature resolution
(RunningQuantile), mask = bilinear_up(r_u) > T[u], IoU counts with IouCounts. The outputs
are the classifier dissection's files (tally.csv, topk.csv, thresholds.npy, summary.json,
exemplars/ with the unit's region highlighted on generated images), written by the same
code, so pages and exports work on generator units unchanged. Additions per layer:

  iqr.csv, iqr_thresholds.npy  the paper's per-(unit, concept) IQR-maximising threshold
  concept_means.npy            [U, K] mean activation where concept k is present (the
                               paper's insertion value), at feature resolution
and at the top: z.npy (the z of each sample index), generated.json (what was sampled).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ..capture import LayerCapture
from ..datasets import Batch
# The classifier driver's own collectors and writers: one file format for both kinds.
from ..collect import CountsCollector, StatsCollector, thresholds_of
from ..errors import EngineError
from ..iou import Vocabulary
from ..options import DissectOptions
from ..outputs import DissectionResult, write_outputs, write_summaries
from .iqr import IqrCounts, candidate_thresholds, write_iqr_csv
from .models import NUM_SEG_CLASSES, PICTURE_MIN_SIZE, segment, to_display_rgb
from .samples import GeneratedSamples, sample_z, z_dim_of

THRESHOLD_RULE = (
    "tally.csv/thresholds.npy: per-unit top-quantile threshold at feature resolution (NetDissect, "
    "as for classifiers); iqr.csv: GAN Dissection's per-(unit, concept) threshold maximising "
    "I(M;S)/H(M,S) over candidate quantiles"
)


@dataclass
class GanDissectOptions:
    layers: list[str]
    n_samples: int = 1000
    seed: int = 0
    quantile: float = 0.005
    top_k: int = 10
    iou_rule: str = "original"  # GAN Dissection counts A[u, c] over every image (NetDissect's original rule)
    batch_size: int = 100
    render: bool = True
    highlight: str = "overlay"
    image_format: str = "png"  # generated images are small; jpg blurs thin strokes
    picture_size: int = PICTURE_MIN_SIZE  # pictures are enlarged to at least this many pixels (models.to_display_rgb)
    iqr: bool = True
    device: str = "cpu"
    progress_bar: bool = True

    def classifier_options(self) -> DissectOptions:
        return DissectOptions(layers=self.layers, top_k=self.top_k, quantile=self.quantile, iou_rule=self.iou_rule,
                              batch_size=self.batch_size, device=self.device, render=self.render,
                              highlight=self.highlight, image_format=self.image_format, progress_bar=self.progress_bar)


@torch.no_grad()
def generate_and_capture(generator: nn.Module, segmenter: nn.Module, z: torch.Tensor, layers: list[str],
                         batch_size: int = 100, progress_bar: bool = False):
    """Yield (first index, images [B,C,H,W], labels long [B,H,W], {layer: [B,U,h,w]}) per batch."""
    generator.eval()
    segmenter.eval()
    device = next(generator.parameters(), torch.empty(0)).device
    starts = range(0, len(z), batch_size)
    with LayerCapture(generator, layers, stop_early=False) as capture:
        for s in tqdm(starts, desc="generate", unit="batch", disable=not progress_bar, leave=False):
            capture.outputs = {}
            images = generator(z[s : s + batch_size].to(device))
            if images.dim() != 4:
                raise EngineError(f"the generator returned shape {tuple(images.shape)}; expected images [B, C, H, W]")
            missing = [n for n in capture.modules if n not in capture.outputs]
            if missing:
                raise EngineError(f"layer(s) {', '.join(missing)} never ran in the generator's forward pass")
            labels = segment(segmenter, images).cpu()
            yield s, images.cpu(), labels, {k: v.float().cpu() for k, v in capture.outputs.items()}


def concept_means(feats: torch.Tensor, labels: torch.Tensor, concept_numbers: list[int]) -> np.ndarray:
    """[U, K]: activation averaged over feature cells weighted by concept k's share of the cell."""
    onehot = F.one_hot(labels.long(), NUM_SEG_CLASSES).permute(0, 3, 1, 2).float()
    share = F.adaptive_avg_pool2d(onehot, (feats.shape[-2], feats.shape[-1]))[:, concept_numbers]  # [N, K, h, w]
    weighted = torch.einsum("nuyx,nkyx->uk", feats.double(), share.double())
    return (weighted / share.double().sum((0, 2, 3)).clamp(min=1e-12)).float().numpy()


def dissect_generator(generator: nn.Module, segmenter: nn.Module, options: GanDissectOptions,
                      out_dir: str | Path, *, progress=None) -> DissectionResult:
    """Dissect ``options.layers`` of ``generator`` on ``n_samples`` generated images."""
    dopts = options.classifier_options()
    dopts.validate()
    if options.n_samples < 1:
        raise EngineError(f"n_samples must be at least 1, got {options.n_samples}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    z = sample_z(range(options.n_samples), z_dim_of(generator), options.seed)
    pictures: list[np.ndarray] = []
    labels: list[torch.Tensor] = []
    feats: dict[str, list[torch.Tensor]] = {name: [] for name in options.layers}
    stats_c = StatsCollector(dopts, expected_images=options.n_samples)
    for s, images, lab, outputs in generate_and_capture(generator, segmenter, z, options.layers,
                                                       options.batch_size, options.progress_bar):
        image_size = [int(images.shape[-2]), int(images.shape[-1])]
        batch = _batch(s, images, lab)
        stats_c.add(batch, outputs)
        pictures.append(to_display_rgb(images, options.picture_size).numpy())
        labels.append(lab.to(torch.uint8))
        for name, acts in outputs.items():
            feats[name].append(acts)
        if progress is not None:
            progress("sweep", min(1.0, (s + len(images)) / options.n_samples))
    samples = GeneratedSamples(np.concatenate(pictures), options.seed)
    all_labels = torch.cat(labels)
    all_feats = {name: torch.cat(parts) for name, parts in feats.items()}
    stats = stats_c.state(samples)
    t1 = time.perf_counter()

    vocab = Vocabulary.from_concepts(samples.concepts, samples.categories)
    counts_c = CountsCollector(dopts, vocab, thresholds_of(stats, dopts))
    for s in range(0, options.n_samples, options.batch_size):
        lab = all_labels[s : s + options.batch_size].long()
        counts_c.add({n: f[s : s + options.batch_size] for n, f in all_feats.items()}, lab[:, None],
                     torch.zeros((len(lab), 0), dtype=torch.long))
    counts = counts_c.state(samples)
    t2 = time.perf_counter()

    def get_maps(name: str, indices: np.ndarray):
        return lambda u, r, index: all_feats[name][index, u]

    timings = {"sweep": t1 - t0, "counts": t2 - t1}
    result = write_outputs(samples, dopts, stats, counts, out_dir, get_maps, progress, timings)
    numbers = [c.number for c in samples.concepts]
    names = [c.name for c in samples.concepts]
    for name, layer in result.layers.items():
        layer_dir = out_dir / name
        np.save(layer_dir / "concept_means.npy", concept_means(all_feats[name], all_labels, numbers))
        if options.iqr:
            iqr = IqrCounts(candidate_thresholds(all_feats[name]), NUM_SEG_CLASSES)
            for s in range(0, options.n_samples, options.batch_size):
                iqr.add(all_feats[name][s : s + options.batch_size], all_labels[s : s + options.batch_size])
            found = iqr.result(numbers)
            np.save(layer_dir / "iqr_thresholds.npy", found["threshold"].astype(np.float32))
            write_iqr_csv(layer_dir / "iqr.csv", found, names)
        layer.summary.update(kind="generator", threshold_rule=THRESHOLD_RULE, samples_seed=options.seed,
                             segmented_pixels_per_concept=dict(zip(names, _pixels_per_concept(all_labels, numbers))))
    np.save(out_dir / "z.npy", z.numpy())
    meta = {"kind": "generator-dissection", "n_samples": options.n_samples, "seed": options.seed,
            "z_dim": z_dim_of(generator), "layers": list(result.layers), "image_size": image_size,
            "picture_size": list(samples.images.shape[1:3]),
            "z_rule": "sample i has z = randn(z_dim) from torch.Generator().manual_seed(seed * 1000003 + i)",
            "threshold_rule": THRESHOLD_RULE, "concepts": names}
    (out_dir / "generated.json").write_text(json.dumps(meta, indent=2))
    result.timings["total"] = time.perf_counter() - t0
    write_summaries(out_dir, result)
    return result


def _batch(start: int, images: torch.Tensor, labels: torch.Tensor) -> Batch:
    n = len(images)
    return Batch(torch.arange(start, start + n), images, labels[:, None].long(),
                 torch.zeros((n, 0), dtype=torch.long), torch.full((n,), -1, dtype=torch.long))


def _pixels_per_concept(labels: torch.Tensor, numbers: list[int]) -> list[int]:
    counts = torch.bincount(labels.flatten().long(), minlength=NUM_SEG_CLASSES)
    return [int(counts[n]) for n in numbers]
