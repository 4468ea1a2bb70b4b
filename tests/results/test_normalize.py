"""Word normalisation and vocabulary matching."""
import pytest

from units.results.normalize import Vocabulary, normalize_category, normalize_word, singularize, strip_broden_suffix


@pytest.mark.parametrize("raw, expected", [
    ("  Dogs  ", "dog"),
    ("These are   the DOGS", "dog"),
    ("images of a cat", "cat"),
    ("these are images of trees", "tree"),
    ("the sky", "sky"),
    ("Red   Brick walls", "red brick wall"),
    ("an apple", "apple"),
    ("people", "person"),
    ("glass", "glass"),
    ("", ""),
    ("these are", ""),
    ("wheels!!", "wheel"),
])
def test_it_normalises_annotators_words(raw, expected):
    assert normalize_word(raw) == expected


@pytest.mark.parametrize("plural, singular", [
    ("dogs", "dog"), ("buses", "bus"), ("boxes", "box"), ("churches", "church"), ("bushes", "bush"),
    ("skies", "sky"), ("potatoes", "potato"), ("leaves", "leaf"), ("grass", "grass"), ("bus", "bus"),
    ("cactus", "cactus"), ("house", "house"), ("cars", "car"), ("women", "woman"), ("is", "is"),
    ("lenses", "lens"),
])
def test_the_singulariser_handles_regular_and_irregular_plurals(plural, singular):
    assert singularize(plural) == singular


def test_broden_suffixes_s_and_c_are_ignored_but_other_hyphens_kept():
    assert strip_broden_suffix("sky-s") == "sky"
    assert strip_broden_suffix("red-c") == "red"
    assert strip_broden_suffix("t-shirt") == "t-shirt"


def test_material_counts_as_texture():
    assert normalize_category("Material") == "texture"
    assert normalize_category("object") == "object"


def test_vocabulary_matches_exact_words_synonyms_and_suffixed_concepts():
    vocab = Vocabulary(["dog", "sky-s", "red-c", "car"], {"Puppies": "dog", "automobile": "car"})
    assert vocab.match("Dogs") == "dog"
    assert vocab.match("these are puppies") == "dog"
    assert vocab.match("the sky") == "sky"
    assert vocab.match("red") == "red"
    assert vocab.match("automobiles") == "car"
    assert vocab.match("bicycle") == ""
    assert vocab.same("puppy", "dog")
    assert vocab.same("sky", "sky-s")
    assert not vocab.same("", "dog")


def test_digit_words_name_the_mixtures_digits():
    vocab = Vocabulary([str(d) for d in range(10)])
    assert vocab.match("zero") == "0"
    assert vocab.match("Digit 7") == "7"
    assert vocab.match("sevens") == "7"


def test_number_words_are_left_alone_without_a_digit_vocabulary():
    assert Vocabulary(["dog"]).canonical("one") == "one"
