"""``gan demo``: the whole GAN Dissection pipeline on offline data, with a report.

Mixture canvases -> DCGAN -> digit segmenter (scored on held-out real canvases) ->
dissection of layer2 -> per-unit causal ranking -> top-20 vs random-20 per digit ->
edit timing -> report.json + index.html with pictures. Every stage writes one named file,
so a rerun into the same folder resumes (data and checkpoints are reused).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .data import make_canvases
from .dissect import GanDissectOptions, dissect_generator
from .edit import Latent, edit_image
from .intervene import Intervention, layer_shape, make_baseline, rank_units
from .models import DIGIT_NAMES, SpriteGenerator, load_generator, load_segmenter
from .pictures import before_after, sample_sheet
from .ranking import centre_region, digit_effects, ranking_table
from .report import write_html
from .samples import sample_z, z_dim_of
from .segmenter import SegmenterRecipe, evaluate_segmenter, train_segmenter
from .train import GanRecipe, train_gan

LAYER = "layer2"  # 8x8 maps in dcgan32 and cdcgan32: mid-level, where the paper finds object units


@dataclass
class DemoSizes:
    train_images: int = 3000
    val_images: int = 500
    gan_steps: int = 4000
    gan_batch: int = 64
    # The class-conditional generator (GanRecipe): layer2 has gan_units channels, 20 per digit by a fixed
    # partition, each digit with a pathway of its own after it (the engine's README says why).
    gan_conditional: bool = True
    gan_units: int = 200
    gan_gating: str = "fixed"
    gan_pathways: bool = True
    gan_digit_units: int = 20  # learned gates only: the prior's channel budget per digit
    # Pathways only: judge each pathway's strokes against the real canvases' digits, each in a channel of its
    # own (GanRecipe.layered); off, since it measured no more specific (benchmarks/RESULTS.md).
    gan_layered: bool = False
    gan_pathway_norm: str = "batch"  # GanRecipe.pathway_norm
    # The layered generator (``sprites32``, GanRecipe.sprites): each digit a sprite drawn by its own pathway from
    # gan_units / 10 layer2 channels, placed by a layout from z; the conditional settings above then do not apply.
    gan_sprites: bool = True
    gan_classify_weight: float = 1.0  # GanRecipe.classify_weight: AC-GAN's digit head beside the projection
    gan_smooth: bool = True  # GanRecipe.smooth: each stroke map under a fixed blur, as the real digits are smooth
    gan_ema: float = 0.999  # GanRecipe.ema: the generator written is the moving average of its weights
    seg_epochs: int = 12  # a weaker segmenter misreads more generated strokes; the report gives its held-out IoU
    seg_width: int = 16
    seg_lr: float = 3e-3
    dissect_samples: int = 1000
    # A digit covers ~2% of a canvas; NetDissect's 0.005 gives masks of ~0.13% of the pixels
    # here, which caps any unit's IoU near 0.05. 0.02 keeps the per-unit rule at a digit's scale.
    quantile: float = 0.02
    rank_samples: int = 300
    effect_samples: int = 1000  # the paper's 1,000 images per causal effect
    k: int = 20
    edits: int = 20


QUICK = DemoSizes(train_images=800, val_images=200, gan_steps=120, gan_batch=32, seg_epochs=3, seg_width=8, seg_lr=1e-2,
                  dissect_samples=200, rank_samples=40, effect_samples=100, edits=10)


def gan_recipe(sizes: DemoSizes) -> GanRecipe:
    return GanRecipe(steps=sizes.gan_steps, batch_size=sizes.gan_batch, conditional=sizes.gan_conditional,
                     units=sizes.gan_units, gating=sizes.gan_gating, digit_units=sizes.gan_digit_units,
                     pathways=sizes.gan_pathways, layered=sizes.gan_pathways and sizes.gan_layered,
                     pathway_norm=sizes.gan_pathway_norm, sprites=sizes.gan_sprites,
                     classify_weight=sizes.gan_classify_weight if sizes.gan_sprites else 0.0,
                     smooth=sizes.gan_smooth, ema=sizes.gan_ema)


def _timed(seconds: dict, name: str, fn):
    started = time.perf_counter()
    value = fn()
    seconds[name] = round(time.perf_counter() - started, 2)
    print(f"gan demo: {name} done in {seconds[name]:.0f} s", flush=True)  # one line per stage, no bars
    return value


def run_demo(out_dir: str | Path, *, quick: bool = False, source: str = "digits", seed: int = 0,
             sizes: DemoSizes | None = None) -> dict:
    out = Path(out_dir)
    (out / "pictures").mkdir(parents=True, exist_ok=True)
    sizes = sizes or (QUICK if quick else DemoSizes())
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convs on a shared CPU: one thread is as fast and disturbs less
    try:
        train_dir = _timed(seconds, "data", lambda: (
            make_canvases(out / "data" / "train", n_images=sizes.train_images, source=source, seed=seed),
            make_canvases(out / "data" / "val", n_images=sizes.val_images, split="val", seed=seed + 1,
                          source=source))[0])
        gen_file, seg_file = out / "models" / "generator.pt", out / "models" / "segmenter.pt"
        seg_recipe = SegmenterRecipe(epochs=sizes.seg_epochs, width=sizes.seg_width, lr=sizes.seg_lr)
        seg_train = _timed(seconds, "segmenter", lambda: _cached_metrics(seg_file) or train_segmenter(
            train_dir, seg_file, recipe=seg_recipe, seed=seed, device="cpu", progress=False))
        gan = _timed(seconds, "gan", lambda: _cached_metrics(gen_file) or train_gan(
            train_dir, gen_file, recipe=gan_recipe(sizes), seed=seed, device="cpu", progress=False))
        gen, seg = load_generator(checkpoint=gen_file), load_segmenter(checkpoint=seg_file)
        from .data import load_canvases

        seg_scores = _timed(seconds, "segmenter_eval",
                            lambda: evaluate_segmenter(seg, load_canvases(out / "data" / "val")))
        options = GanDissectOptions(layers=[LAYER], n_samples=sizes.dissect_samples, seed=seed, quantile=sizes.quantile,
                                    progress_bar=False)
        result = _timed(seconds, "dissect", lambda: dissect_generator(gen, seg, options, out / "dissection"))
        layer = result.layers[LAYER]
        means = np.load(out / "dissection" / LAYER / "concept_means.npy")
        rank_base = make_baseline(gen, seg, n=sizes.rank_samples, seed=seed + 1)
        ranking = _timed(seconds, "rank", lambda: rank_units(gen, seg, LAYER, rank_base))
        np.save(out / "ranking.npy", ranking)
        by_iou = iou_ranking(out / "dissection" / LAYER / "iqr.csv", ranking.shape[0])
        eval_base = make_baseline(gen, seg, n=sizes.effect_samples, seed=seed + 2)
        effects = _timed(seconds, "top_vs_random", lambda: digit_effects(
            gen, seg, LAYER, by_iou, eval_base, k=sizes.k, seed=seed, concept_means=means))
        by_ablation = _timed(seconds, "ablation_ranked", lambda: digit_effects(
            gen, seg, LAYER, ranking, eval_base, k=sizes.k, seed=seed))
        pictures = sample_sheet(gen, seg, sample_z(range(32), z_dim_of(gen), seed), out / "pictures")
        for d, name in enumerate(DIGIT_NAMES):
            row = effects["digits"][name]
            if row["pixels_before"] > 0:
                before_after(gen, seg, Intervention(LAYER, [u - 1 for u in row["top_units"]]), eval_base, d + 1,
                             out / "pictures" / f"ablate_{name}.png")
                pictures[f"ablate_{name}"] = f"pictures/ablate_{name}.png"
            outcome = row.get("insertion_top") or {}
            picks = outcome.get("failed_examples", []) + outcome.get("succeeded_examples", [])
            if picks:
                top = [u - 1 for u in row["top_units"]]
                before_after(gen, seg, Intervention(LAYER, top, "insert", values=np.maximum(means[top, d], 0.0),
                                                    region=centre_region(layer_shape(gen, LAYER).feature)),
                             eval_base, d + 1, out / "pictures" / f"insert_{name}.png", picks=picks)
                pictures[f"insert_{name}"] = f"pictures/insert_{name}.png"
        edit_times = _edit_times(gen, sizes.edits)
    finally:
        torch.set_num_threads(threads)
    seconds_total = time.perf_counter() - started
    report = {
        "unit_numbering": "units count from 1 everywhere in this report, as in tally.csv",
        "quick": quick, "sizes": asdict(sizes), "source": source, "seed": seed, "layer": LAYER,
        "seconds": seconds, "seconds_total": seconds_total,
        "gan": {k: v for k, v in gan.items() if k != "history"},
        "segmenter": seg_scores,
        "segmenter_training": {k: v for k, v in seg_train.items() if k != "history"},
        "seconds_note": "a stage whose checkpoint was already in the folder takes ~0 s here; its own training "
                        "time is gan.seconds / segmenter_training.seconds",
        "generated_pixels_per_digit": layer.summary["segmented_pixels_per_concept"],
        "dissection": _dissection_figures(layer, out / "dissection" / LAYER),
        "causal_ranking": ranking_table(ranking, sizes.k),
        "top_vs_random": effects,
        "specificity": effects["specificity"],
        "specificity_random": effects["specificity_random"],
        "specificity_claim": _specificity_claim(effects, quick),
        "specificity_source": _specificity_source(gen),
        "top_units_chosen_by": TOP_UNITS_RULE,
        "specificity_ablation_ranked": {
            "what": ABLATION_RANKED_RULE, "specificity": by_ablation["specificity"],
            "summary": by_ablation["specificity_summary"],
            "top_units": {name: row["top_units"] for name, row in by_ablation["digits"].items()}},
        "insertion_rates": effects.get("insertion_rates"),
        "training_seconds": {"gan": gan.get("seconds"), "segmenter": seg_train.get("seconds"),
                             "threads": 1, "cpu": _cpu_name()},
        "edit": edit_times,
        "pictures": pictures,
        "notes": [
            f"tally.csv uses the per-unit top-quantile threshold (as for classifiers) at quantile {sizes.quantile} "
            "(a digit covers ~2% of a canvas; 0.005 would cap IoU near 0.05); iqr.csv the paper's per-concept IQR "
            "threshold.",
            "A digit's top units come from the dissection's IoU on samples of seed (the ablation-ranked sets from "
            "single-unit ablation on samples of seed+1); every set is measured on samples of seed+2, so choosing "
            "units and measuring them never share samples.",
            "remove effect = fraction of the digit's pixels removed; insert effect = fraction of the region's other "
            "pixels turned into the digit.",
        ],
    }
    (out / "report.json").write_text(json.dumps(report, indent=2))
    write_html(out / "index.html", report)
    return report


TOP_UNITS_RULE = ("a digit's top units are the dissection's own: the units whose maps agree best with the "
                  "digit's segmented pixels (IoU at the paper's per-concept IQR threshold, iqr.csv, on the "
                  "dissection's samples), the units the dissection labels with that digit; removing them on other "
                  "samples (seed's) tests whether they cause the digit and nothing else. The generator's partition "
                  "is not read")
ABLATION_RANKED_RULE = ("the same matrix with each digit's top units taken instead from removing every unit alone on "
                        "samples of seed+1 and ranking by the share of the digit's segmented pixels it removes "
                        "(causal_ranking); where a digit is drawn by many units together no single one removes much "
                        "of it, and units that change other digits' strokes near it can rank higher")


def iou_ranking(iqr_csv: Path, units: int) -> np.ndarray:
    """float [U, 11] (label numbers as columns, background NaN): each unit's IoU with each digit from iqr.csv."""
    import csv

    table = np.full((units, len(DIGIT_NAMES) + 1), np.nan)
    with open(iqr_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            table[int(row["unit"]) - 1, DIGIT_NAMES.index(row["concept"]) + 1] = float(row["iou"])
    return table


def _specificity_source(gen) -> dict:
    """Where any specificity comes from: the generator's design, said plainly for the report."""
    config = dict(getattr(gen, "config", {}))
    gating = config.get("gating")
    if isinstance(gen, SpriteGenerator):
        return {"source": "by design", "line": (
            "by design: the generator is layered. Each shown digit is a sprite drawn by a pathway of its own: "
            f"layer2 channel u serves digit u // {gen.per_digit} only, holds that digit's sprite at the place "
            "the layout read from z gives it and is zero elsewhere, and the drawing stages after layer2 are "
            "grouped per digit with no bias, so removing a digit's channels removes that pathway's strokes and "
            "nothing else. Each pathway was trained on its own against real crops of its digit (a projection "
            "discriminator), so whether the segmenter reads a pathway's strokes as its digit is what it learned, "
            "and the matrices measure it. The dissection finds each digit's units without reading the partition.")}
    if gating == "learned":
        return {"source": "learned", "line": (
            "learned: the generator is class-conditional and each layer2 channel has a learned on/off gate per "
            "digit, trained with the GAN under a stated prior (a penalty when a digit uses more than a budget of "
            "channels or a channel serves more than one digit); which channels serve which digit is learned, "
            "and the dissection finds them without reading the gates.")}
    if gating == "fixed" and config.get("pathways"):
        return {"source": "by design", "line": (
            "by design: the generator is class-conditional, layer2 is partitioned (channel u serves digit "
            "u // (units / 10) only) and each digit's channels feed a pathway of its own (grouped convolutions "
            "after layer2, one stroke map per digit, the picture their maximum), so removing a digit's channels "
            "removes that pathway's strokes and nothing else. Whether the segmenter reads those strokes as that "
            "digit depends on how well the pathway learned to draw it; the matrices measure it. Learned gates "
            "under a sparsity prior, with shared layers after layer2, do not give specific units (see the "
            "engine's README). The dissection finds each digit's units without reading the partition.")}
    if gating == "fixed":
        return {"source": "by design", "line": (
            "by design: the generator is class-conditional and layer2 is partitioned, channel u serving digit "
            "u // (units / 10) only; specificity follows from that partition, and the dissection shows it finds "
            "each digit's channels without reading the partition.")}
    return {"source": "none", "line": "none built in: an unconditional DCGAN; any specificity is emergent."}


def _cpu_name() -> str:
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


CLAIM_DIGITS = 7  # GAN Dissection's claim holds here when at least 7 of the 10 digits have specific units


def _specificity_claim(effects: dict, quick: bool) -> dict:
    """Whether this run shows units specific to one digit, said plainly (a quick run is too short to)."""
    top, rand = effects["specificity_summary"], effects["specificity_random_summary"]
    shown = top["specific_digits"] >= CLAIM_DIGITS
    line = (f"{top['specific_digits']} of 10 digits have specific top-{effects['k']} units "
            f"({top['rule']}; random-{effects['k']} sets: {rand['specific_digits']} of 10); the claim needs "
            f"{CLAIM_DIGITS}: {'shown' if shown else 'not shown'} by this run.")
    if quick:
        line += (" This is the quick run: its generator trains for a short time and is not expected to have "
                 "specific units; run without --quick for the figures.")
    return {"shown": shown, "needs_digits": CLAIM_DIGITS, "specific_digits": top["specific_digits"],
            "random_specific_digits": rand["specific_digits"], "quick": quick, "line": line}


def _cached_metrics(checkpoint: Path) -> dict | None:
    """Metrics of a finished checkpoint from an earlier run into the same folder (resume)."""
    if not checkpoint.is_file():
        return None
    return dict(torch.load(checkpoint, map_location="cpu", weights_only=True).get("metrics") or {})


def _edit_times(gen, n: int) -> dict:
    times = []
    for i in range(n + 1):
        r = edit_image(gen, layer=LAYER, units=[i % 64, (i * 7 + 3) % 64], latent=Latent(seed=i),
                       region=(8, 8, 24, 24), mode="remove" if i % 2 else "insert", values=3.0)
        times.append(r.seconds)
    times = times[1:]  # the first call pays one-off allocations
    return {"n": n, "median_seconds": float(np.median(times)), "max_seconds": float(np.max(times)),
            "what": "edit_image: one z, 2 units of layer2, a 16x16 px box; before+after images"}


def _dissection_figures(layer, layer_dir: Path) -> dict:
    import csv

    best_iqr: dict[str, dict] = {}
    with open(layer_dir / "iqr.csv", newline="") as fh:
        for row in csv.DictReader(fh):
            if float(row["iou"]) > best_iqr.get(row["concept"], {}).get("iou", -1.0):
                best_iqr[row["concept"]] = {"unit": int(row["unit"]), "iou": float(row["iou"]),
                                            "iqr": float(row["iqr"]), "top_fraction": float(row["top_fraction"])}
    units = sorted(layer.labels, key=lambda lab: -lab.score)
    return {
        "line": layer.summary.get("line"),
        "interpretable_units": layer.summary.get("interpretable_units"),
        "top_units": [{"unit": lab.unit + 1, "label": lab.label, "iou": lab.score,
                       "strip": f"dissection/{layer.strips.get(lab.unit, '')}"} for lab in units[:12]],
        "best_unit_per_digit_iqr": best_iqr,
    }
