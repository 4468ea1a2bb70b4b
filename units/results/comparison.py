"""Compare the crowd's labels with Network Dissection's IoU labels, per unit and per layer."""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .normalize import Vocabulary, normalize_category, strip_broden_suffix

IOU_THRESHOLD = 0.04  # NetDissect: a unit is an interpretable detector when its best IoU exceeds this
CROWD_CATEGORIES = ["scene", "object", "part", "texture", "color", "none"]


@dataclass(frozen=True)
class UnitLabels:
    unit: object
    crowd_word: str
    crowd_category: str
    crowd_interpretable: bool
    iou_label: str
    iou_category: str
    iou_score: float
    gold_word: str = ""
    gold_category: str = ""

    @property
    def iou_interpretable(self) -> bool:
        return self.iou_score > IOU_THRESHOLD


def word_match(vocab: Vocabulary, crowd_word: str, iou_label: str) -> bool:
    return bool(crowd_word and iou_label) and vocab.same(crowd_word, iou_label)


def category_match(crowd_category: str, iou_category: str) -> bool:
    """Broden's material counts as texture; "none" never matches."""
    crowd, iou = normalize_category(crowd_category), normalize_category(iou_category)
    return bool(crowd) and crowd != "none" and crowd == iou


@dataclass
class LayerComparison:
    units: int = 0
    both: int = 0
    human_only: int = 0
    iou_only: int = 0
    neither: int = 0
    word_matches: int = 0  # among units interpretable by both
    category_matches: int = 0  # among units interpretable by both
    # confusion[crowd category][IoU category]; IoU category "none" when IoU <= threshold
    confusion: dict[str, dict[str, int]] = field(default_factory=dict)
    gold_units: int = 0
    crowd_correct: int = 0
    iou_correct: int = 0

    @property
    def crowd_accuracy(self) -> float | None:
        return self.crowd_correct / self.gold_units if self.gold_units else None

    @property
    def iou_accuracy(self) -> float | None:
        return self.iou_correct / self.gold_units if self.gold_units else None

    def as_dict(self) -> dict:
        return {
            "units": self.units, "both": self.both, "human_only": self.human_only, "iou_only": self.iou_only,
            "neither": self.neither, "word_matches": self.word_matches, "category_matches": self.category_matches,
            "confusion": self.confusion, "gold_units": self.gold_units, "crowd_accuracy": self.crowd_accuracy,
            "iou_accuracy": self.iou_accuracy,
        }


def compare_layer(rows: Iterable[UnitLabels], vocab: Vocabulary) -> LayerComparison:
    out = LayerComparison()
    iou_cats = list(CROWD_CATEGORIES)
    confusion: Counter = Counter()
    for row in rows:
        out.units += 1
        human, iou = row.crowd_interpretable, row.iou_interpretable
        if human and iou:
            out.both += 1
            out.word_matches += word_match(vocab, row.crowd_word, row.iou_label)
            out.category_matches += category_match(row.crowd_category, row.iou_category)
        elif human:
            out.human_only += 1
        elif iou:
            out.iou_only += 1
        else:
            out.neither += 1
        crowd_cat = normalize_category(row.crowd_category) if human else "none"
        iou_cat = normalize_category(row.iou_category) if iou else "none"
        if iou_cat not in iou_cats:
            iou_cats.append(iou_cat)
        confusion[(crowd_cat, iou_cat)] += 1
        if row.gold_word or row.gold_category == "none":
            # Ground truth (the mixture's digits): a label is right when it names the true concept;
            # for a gold "no clear concept", when the labelling finds the unit uninterpretable.
            out.gold_units += 1
            if row.gold_word:
                out.crowd_correct += human and vocab.names_gold(row.crowd_word, row.gold_word)
                out.iou_correct += iou and vocab.names_gold(strip_broden_suffix(row.iou_label), row.gold_word)
            else:
                out.crowd_correct += not human
                out.iou_correct += not iou
    out.confusion = {c: {k: confusion[(c, k)] for k in iou_cats} for c in CROWD_CATEGORIES}
    return out

