"""Comparison with IoU dissection on a fixture whose answers we know."""
import pytest

from tests.factories import make_job
from units.dissection.models import Unit
from units.results.comparison import UnitLabels, category_match, compare_layer, word_match
from units.results.models import UnitAggregate
from units.results.normalize import Vocabulary
from units.results.selectors import detector_counts, layer_comparison

VOCAB = Vocabulary(["dog", "sky-s", "wood", "red-c", "0", "1"], {"puppy": "dog"})


def row(word, cat, human, label, iou_cat, score, gold="", gold_category=""):
    return UnitLabels(unit=None, crowd_word=word, crowd_category=cat, crowd_interpretable=human,
                      iou_label=label, iou_category=iou_cat, iou_score=score, gold_word=gold,
                      gold_category=gold_category)


def test_word_and_category_match_rules():
    assert word_match(VOCAB, "puppy", "dog")
    assert word_match(VOCAB, "sky", "sky-s")
    assert not word_match(VOCAB, "cat", "dog")
    assert not word_match(VOCAB, "", "dog")
    assert category_match("texture", "material")
    assert not category_match("none", "none")
    assert not category_match("object", "scene")


def test_layer_counts_confusion_and_accuracy_match_the_hand_count():
    rows = [
        row("puppy", "object", True, "dog", "object", 0.10),  # both, word and category match
        row("sky", "scene", True, "sky-s", "scene", 0.05),  # both, match
        row("grain", "texture", True, "wood", "material", 0.08),  # both, category match only
        row("red", "color", True, "dog", "object", 0.03),  # human only
        row("", "none", False, "wood", "material", 0.20),  # IoU only
        row("", "none", False, "dog", "object", 0.01),  # neither
        row("0", "object", True, "1", "object", 0.06, gold="0"),  # both; crowd right, IoU wrong
        row("", "none", False, "1", "object", 0.09, gold="one|1"),  # IoU only; IoU right (an alternative)
    ]
    out = compare_layer(rows, VOCAB)
    assert (out.units, out.both, out.human_only, out.iou_only, out.neither) == (8, 4, 1, 2, 1)
    assert out.word_matches == 2
    assert out.category_matches == 4
    assert out.confusion["object"]["object"] == 2
    assert out.confusion["scene"]["scene"] == 1
    assert out.confusion["texture"]["texture"] == 1
    assert out.confusion["color"]["none"] == 1
    assert out.confusion["none"]["texture"] == 1
    assert out.confusion["none"]["object"] == 1
    assert out.confusion["none"]["none"] == 1
    assert sum(sum(r.values()) for r in out.confusion.values()) == 8
    assert (out.gold_units, out.crowd_correct, out.iou_correct) == (2, 1, 1)
    assert out.crowd_accuracy == 0.5 and out.iou_accuracy == 0.5


def test_a_gold_no_clear_concept_unit_is_right_when_found_uninterpretable():
    rows = [row("", "none", False, "dog", "object", 0.2, gold_category="none"),
            row("dog", "object", True, "dog", "object", 0.01, gold_category="none")]
    out = compare_layer(rows, VOCAB)
    assert (out.gold_units, out.crowd_correct, out.iou_correct) == (2, 1, 1)


@pytest.mark.django_db
def test_a_layers_comparison_and_bar_charts_read_the_stored_labels():
    job = make_job(layers={"conv3": 4})  # IoU labels "0".."3" (object), scores 0.02, 0.04, 0.06, 0.08
    layer = job.layer_set.get()
    units = list(Unit.objects.filter(layer=layer).order_by("index"))
    # The published category counts, not the vote beside it.
    UnitAggregate.objects.create(unit=units[0], crowd_word="0", concept="0", category="object", category_mv="texture",
                                 interpretable=True)
    UnitAggregate.objects.create(unit=units[2], crowd_word="5", concept="5", category="object", interpretable=True)
    UnitAggregate.objects.create(unit=units[3], crowd_word="", category="none", interpretable=False)
    out = layer_comparison(layer)
    # IoU detectors (> 0.04): units 2 and 3; crowd: units 0 and 2.
    assert (out.both, out.human_only, out.iou_only, out.neither) == (1, 1, 1, 1)
    counts = detector_counts(layer)
    assert counts["n_units"] == 4
    assert counts["iou"] == {"units": 2, "concepts": 2, "by_category": {"object": 2}}
    assert counts["crowd"] == {"units": 2, "concepts": 2, "by_category": {"object": 2}}


@pytest.mark.django_db
def test_a_word_the_crowd_put_in_two_categories_covers_one_concept():
    """The summary line counts unique concepts; the per-category bars may each show the word."""
    job = make_job(layers={"conv3": 4})
    units = list(Unit.objects.filter(layer=job.layer_set.get()).order_by("index"))
    for unit, category in zip(units[:3], ["object", "texture", "object"]):
        UnitAggregate.objects.create(unit=unit, crowd_word="0", concept="0", category=category, interpretable=True)
    crowd = detector_counts(job.layer_set.get())["crowd"]
    assert crowd == {"units": 3, "concepts": 1, "by_category": {"object": 1, "texture": 1}}
