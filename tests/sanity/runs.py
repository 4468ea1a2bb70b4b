"""Hand-made run dicts (the shape measure.measure_run returns) for summary and page tests."""
from __future__ import annotations

KS = ("100", "300", "500", "700")
RECALLS = ("0.25", "0.5", "0.75")


def make_unit(u: int, ap: list[float], *, ablation: float = 0.0, cutoff: float = 0.8, pictures: list[str] | None = None,
              precision: float | None = None) -> dict:
    """A unit whose precision figures are min(1, AP + 0.05) (or `precision` for its best digit)."""
    best = max(range(len(ap)), key=lambda k: ap[k])
    p_k = [min(1.0, a + 0.05) for a in ap]
    if precision is not None:
        p_k[best] = precision
    return {
        "unit": u, "best_digit": best, "best_ap": ap[best], "detector": ap[best] >= cutoff, "ap": list(ap),
        "precision_at_k": {k: list(p_k) for k in KS},
        "precision_at_recall": {r: list(ap) for r in RECALLS},
        "iou": [a / 10 for a in ap], "iou_label": str(best), "iou_score": ap[best] / 10,
        "ablation": ablation, "ablation_own_digit": ablation * 2,
        "ablation_by_digit": {str(d): ablation for d in range(len(ap))},
        "threshold": 0.5, "max_activation": 1.0,
        "top_images": [0, 1, 2], "top_image_names": ["00000.png", "00001.png", "00002.png"],
        "top_scores": [3.0, 2.0, 1.0],
        "exemplars": pictures or [], "plain": pictures or [], "strip": "",
    }


def make_run(variant: str, seed: int, *, accuracy: float, conv3_aps: list[list[float]],
             ablations: list[float] | None = None,
             experiment: str = "variants", effective: list[int] | None = None, pictures: list[str] | None = None,
             design: str = "mixturenet", precision: float | None = None) -> dict:
    """A run whose conv1/conv2 units are weak (AP 0.3) and whose conv3 units have the given APs
    (and, when given, precision@K = `precision` for their best digit)."""
    ablations = ablations or [0.01] * len(conv3_aps)
    weak = [0.3] * 10
    prefix = "seednet_" if design == "seed" else ""
    return {
        "id": f"{prefix}{'useful_' if experiment == 'usefulness' else ''}{variant}_s{seed}", "design": design,
        "experiment": experiment,
        "variant": variant, "seed": seed, "width": 3.0 if "wide" in variant else 1.0,
        "dropout": 0.5 if "dropout" in variant else 0.0,
        "checkpoint": f"runs/{variant}_s{seed}/model.pt", "val_dir": "data/val", "train_dir": "data/train",
        "dissect_dir": f"runs/{variant}_s{seed}/dissect",
        "n_train": 100, "n_val": 100, "n_ablation": 100, "num_classes": 45 if effective is None else 28,
        "digits": list(range(10)), "effective_digits": effective if effective is not None else list(range(10)),
        "train_accuracy": accuracy, "val_accuracy": accuracy, "baseline_ablation_accuracy": accuracy,
        "digit_frequency": [0.2] * 10,
        "layers": {
            "conv1": {"num_units": 2, "units": [make_unit(u, weak, ablation=0.001,
                                                          pictures=pictures) for u in range(2)], "summary_line": ""},
            "conv2": {"num_units": 2, "units": [make_unit(u, weak, ablation=0.002,
                                                          pictures=pictures) for u in range(2)], "summary_line": ""},
            "conv3": {"num_units": len(conv3_aps),
                      "units": [make_unit(u, ap, ablation=a, pictures=pictures, precision=precision)
                                for u, (ap, a) in enumerate(zip(conv3_aps, ablations))],
                      "summary_line": ""},
        },
        "timings": {"train": 1.0},
    }


def one_hot_aps(digits: list[int], strong: float, weak: float = 0.2) -> list[list[float]]:
    """One unit per listed digit with AP `strong` for it and `weak` elsewhere."""
    return [[strong if k == d else weak for k in range(10)] for d in digits]
