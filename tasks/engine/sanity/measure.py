"""One run of the sanity check: train a MixtureNet design, then measure every conv unit against the digits.

Per unit and digit: precision@K, precision at recall, AP (alignment: how well the unit's
ranking of validation images by spatial-max activation matches the digit's presence), IoU
against the digit masks (from `dissect`), and the ablation effect (accuracy lost when the
unit is zeroed) overall and on the classes that contain each digit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch

from ..capture import LayerCapture
from ..datasets import NETDISSECT_MEAN, NETDISSECT_STD, BrodenDataset

# Images per forward batch when measuring (inference only, so larger than training's).
_EVAL_BATCH = 256
# Top-K lists whose misses (images without the digit) are described in run.json.
FALSE_POSITIVE_KS = (100, 300)


def normalised(images: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> the network's input, normalised as in training (NetDissect-Lite)."""
    mean = torch.tensor(NETDISSECT_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(NETDISSECT_STD).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std


def unit_scores(model: torch.nn.Module, images: torch.Tensor, layers: list[str],
                device: str) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per layer float [N, U]: each image's spatial max per unit (the score top images rank by);
    and the logits [N, classes] from the same forward pass."""
    model.to(device).eval()
    scores: dict[str, list[np.ndarray]] = {name: [] for name in layers}
    logits: list[np.ndarray] = []
    with LayerCapture(model, layers, stop_early=False) as capture, torch.inference_mode():
        for s in range(0, len(images), _EVAL_BATCH):
            x = normalised(images[s : s + _EVAL_BATCH]).to(device)
            out = model(x)
            for name in layers:
                scores[name].append(capture.outputs[name].amax(dim=(2, 3)).cpu().numpy())
            logits.append(out.cpu().numpy())
    return {k: np.concatenate(v) for k, v in scores.items()}, np.concatenate(logits)


def describe_network(model: torch.nn.Module) -> str:
    """One line naming the layers as built (conv width, stride, BatchNorm, pooling), read from the model."""
    parts = []
    for name, module in model.named_children():
        if isinstance(module, torch.nn.Sequential) and isinstance(module[0], torch.nn.Conv2d):
            conv = module[0]
            extra = [f"stride {conv.stride[0]}"] if conv.stride[0] != 1 else []
            extra += ["BatchNorm"] * any(isinstance(m, torch.nn.BatchNorm2d) for m in module)
            parts.append(f"{name} {conv.out_channels} units {conv.kernel_size[0]}x{conv.kernel_size[1]}"
                         + (f" ({', '.join(extra)})" if extra else "") + ", ReLU")
        elif isinstance(module, torch.nn.MaxPool2d):
            parts.append("max pool")
        elif isinstance(module, torch.nn.AdaptiveAvgPool2d):
            parts.append("global average pooling")
        elif isinstance(module, torch.nn.Dropout) and module.p > 0:
            parts.append(f"dropout {module.p:g}")
        elif isinstance(module, torch.nn.Linear):
            parts.append(f"linear to {module.out_features} classes, softmax")
    return " -> ".join(parts)


def presence_of(val: BrodenDataset, val_dir: Path) -> tuple[np.ndarray, list[int]]:
    """bool [N, 10] digit d visible in image n (from the masks), cached next to the dataset."""
    digits = [int(c.name) for c in val.concepts]
    cache = val_dir / "presence.npy"
    if cache.is_file():
        presence = np.load(cache)
        if presence.shape == (len(val), len(digits)):
            return presence, digits
    presence = val.image_level_presence()
    np.save(cache, presence)
    return presence, digits


def _digit_classes(class_names: list[str], digits: list[int]) -> dict[int, list[int]]:
    """digit -> indices of the classes ("a+b") that contain it (empty for a redundant digit)."""
    pairs = [tuple(int(p) for p in name.split("+")) for name in class_names]
    return {d: [c for c, pair in enumerate(pairs) if d in pair] for d in digits}


def measure_run(job: dict) -> dict:
    """Train one network as `job` says and measure it; writes run.json in job['run_dir'] and returns it."""
    from ..dissect import DissectOptions, collect_counts, collect_stats, dissect, finalize
    from ..models import load_model
    from ..train import NetShape, load_mixture_tensors, recipe_for, train_mixture
    from ..unitstats import unit_alignment

    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    out_root = Path(job["out_dir"])
    device = job["device"]
    layers = list(job["layers"])
    timings: dict[str, float] = {}
    # CPU seconds per stage too: with one thread per worker they estimate the wall time on an idle machine.
    cpu: dict[str, float] = {}

    t, c = time.perf_counter(), time.process_time()
    checkpoint = run_dir / "model.pt"
    recipe = job["recipe"]
    train = train_mixture(
        job["train_dir"], checkpoint, net=NetShape(job["design"], job["width"], job["dropout"]),
        recipe=recipe_for(job["design"], **recipe), seed=job["seed"], device=device, progress=False,
    )
    timings["train"] = time.perf_counter() - t
    cpu["train"] = time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    model = load_model("mixturenet", checkpoint)
    val_dir = Path(job["val_dir"])
    val = BrodenDataset(val_dir)
    images, targets_t, class_names = load_mixture_tensors(val_dir)
    targets = targets_t.numpy()
    presence, digits = presence_of(val, val_dir)
    scores, logits = unit_scores(model, images, layers, device)
    predictions = logits.argmax(1)
    accuracy = float((predictions == targets).mean())
    timings["scores"] = time.perf_counter() - t
    cpu["scores"] = time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    options = DissectOptions(layers=layers, top_k=job["top_k"], batch_size=_EVAL_BATCH, device=device,
                             progress_bar=False, image_format="png")
    n_iou = job.get("iou_images") or len(val)
    if n_iou >= len(val):
        dissection = dissect(model, val, options, run_dir / "dissect")
    else:
        # Top images and thresholds from every validation image; IoU counted on the first n_iou
        # (the counts dominate dissection time on a CPU), through the engine's shard API.
        stats = collect_stats(model, val, options)
        counts = collect_counts(model, val, options, stats, indices=list(range(n_iou)))
        dissection = finalize(model, val, options, stats, counts, run_dir / "dissect")
    timings["dissect"] = time.perf_counter() - t
    cpu["dissect"] = time.process_time() - c

    t, c = time.perf_counter(), time.process_time()
    n_abl = min(job.get("ablation_images") or len(images), len(images))
    ablation = ablation_table(model, normalised(images[:n_abl]), targets_t[:n_abl], layers,
                              num_classes=len(class_names), device=device)
    timings["ablation"] = time.perf_counter() - t
    cpu["ablation"] = time.process_time() - c

    classes_of = _digit_classes(class_names, digits)
    concept_index = {int(c.name): k for k, c in enumerate(val.concepts)}
    result_layers = {}
    for name in layers:
        align = unit_alignment(scores[name], presence, ks=job["ks"], recalls=job["recalls"])
        # A digit shown in no validation image has no AP (NaN); 0 keeps it from counting as detected.
        ap_all = np.nan_to_num(align.average_precision, nan=0.0)  # [U, digits]
        p_k = np.nan_to_num(align.precision_at_k, nan=0.0)  # [U, digits, K]
        p_r = np.nan_to_num(align.precision_at_recall, nan=0.0)  # [U, digits, R]
        lr = dissection.layers[name]
        abl = ablation[name]
        units = []
        for u in range(scores[name].shape[1]):
            ap = ap_all[u]
            best = int(np.argmax(ap))
            by_digit = {}
            for _k, d in enumerate(digits):
                by_digit[str(d)] = class_group_drop(abl, u, classes_of[d])
            units.append({
                "unit": u,
                "best_digit": digits[best],
                "best_ap": float(ap[best]),
                "detector": bool(ap[best] >= job["ap_cutoff"]),
                "ap": [float(v) for v in ap],
                "precision_at_k": {str(K): [float(v) for v in p_k[u, :, j]] for j, K in enumerate(job["ks"])},
                "precision_at_recall": {f"{r:g}": [float(v) for v in p_r[u, :,
                                                                         j]] for j, r in enumerate(job["recalls"])},
                "iou": [float(lr.iou[u, concept_index[d]]) if lr.iou is not None else 0.0 for d in digits],
                "iou_label": lr.labels[u].label if lr.labels else "",
                "iou_score": float(lr.labels[u].score) if lr.labels else 0.0,
                "ablation": float(abl["per_unit_drop"][u]),
                "ablation_own_digit": by_digit[str(digits[best])],
                "ablation_by_digit": by_digit,
                "threshold": float(lr.thresholds[u]),
                "max_activation": float(lr.topk_scores[u, 0]),
                "top_images": [int(i) for i in lr.topk_indices[u]],
                "top_image_names": [val.image_name(int(i)) for i in lr.topk_indices[u]],
                "top_scores": [float(v) for v in lr.topk_scores[u]],
                "exemplars": [_rel(run_dir / "dissect" / p, out_root) for p in lr.exemplars.get(u, [])],
                "plain": [_rel(run_dir / "dissect" / p, out_root) for p in lr.plain.get(u, [])],
                "strip": _rel(run_dir / "dissect" / lr.strips[u], out_root) if u in lr.strips else "",
            })
        result_layers[name] = {"num_units": len(units), "units": units, "summary_line": lr.summary.get("line", ""),
                               "notes": align.notes}

    run = {
        "id": job["id"], "design": job["design"], "experiment": job["experiment"], "variant": job["variant"],
        "seed": job["seed"], "width": job["width"], "dropout": job["dropout"], "network": describe_network(model),
        "recipe": recipe,
        "checkpoint": _rel(checkpoint, out_root), "val_dir": _rel(val_dir, out_root),
        "train_dir": _rel(Path(job["train_dir"]), out_root),
        "dissect_dir": _rel(run_dir / "dissect", out_root),
        "n_train": train["n_train"], "n_val": len(images), "n_ablation": int(n_abl), "n_iou": int(min(n_iou, len(val))),
        "num_classes": len(class_names), "digits": digits,
        "effective_digits": sorted({d for d, cs in classes_of.items() if cs}),
        "train_accuracy": train["train_acc"], "val_accuracy": accuracy, "train_history": train.get("history", []),
        "baseline_ablation_accuracy": float(ablation["_accuracy"]),
        "digit_frequency": [float(v) for v in presence.mean(0)],
        "layers": result_layers,
        "false_positives": false_positive_digits(scores, result_layers, presence, digits, ks=FALSE_POSITIVE_KS),
        "timings": {k: round(v, 2) for k, v in timings.items()},
        "cpu_seconds": {k: round(v, 2) for k, v in cpu.items()},
    }
    (run_dir / "run.json").write_text(json.dumps(run, indent=1))
    return run


def false_positive_digits(scores: dict[str, np.ndarray], layers: dict[str, dict], presence: np.ndarray,
                          digits: list[int], *, ks: tuple[int, ...]) -> dict[str, dict]:
    """Per digit d, for its best unit (largest AP, any layer, as summary.best_units picks it): among the
    unit's top-K images, how many do not show d, and the share of those that show each digit."""
    out = {}
    for k, d in enumerate(digits):
        name, unit = max(((name, u) for name, L in layers.items() for u in L["units"]),
                         key=lambda item: (item[1]["ap"][k], item[0]))
        order = np.argsort(-scores[name][:, unit["unit"]], kind="stable")
        top = {}
        for K in ks:
            pick = order[:K]
            wrong = pick[~presence[pick, k]]
            shows = presence[wrong].mean(0) if len(wrong) else np.zeros(len(digits))
            top[str(K)] = {"n_false": int(len(wrong)), "shows": [float(v) for v in shows]}
        out[str(d)] = {"layer": name, "unit": unit["unit"], "top": top}
    return out


def ablation_table(model, images: torch.Tensor, targets: torch.Tensor, layers: list[str], *, num_classes: int,
                   device: str) -> dict:
    """Per layer, the engine's ablation_effect (accuracy lost when each unit is zeroed); `_accuracy` unablated."""
    from ..ablation import AblationBatching, ablation_effect

    table: dict = {}
    for name in layers:
        table[name] = ablation_effect(model, name, images, targets=targets, device=device, num_classes=num_classes,
                                      batching=AblationBatching(batch_size=_EVAL_BATCH))
        table["_accuracy"] = float(table[name]["baseline_acc"])
    return table


def class_group_drop(abl: dict, unit: int, classes: list[int]) -> float | None:
    """Accuracy lost by zeroing `unit` over the images whose class is in `classes`
    (the per-class drops weighted by each class's image count)."""
    counts = np.asarray(abl["class_counts"], dtype=float)[classes] if classes else np.zeros(0)
    if counts.sum() == 0:
        return None
    drops = np.nan_to_num(np.asarray(abl["per_unit_class_drop"], dtype=float)[unit, classes], nan=0.0)
    return float((drops * counts).sum() / counts.sum())


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)
