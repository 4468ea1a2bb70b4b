"""Turn an annotator's free word into a comparable one and match it to a dataset's concept vocabulary.

Kept free of Django so the rules can be tested as plain functions; the synonym table and the
vocabulary are passed in as dicts/lists by the callers (see selectors.vocabulary_for).
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

# Phrases annotators put in front of the concept (MILAN strips the same filler).
_FILLER_PREFIXES = (
    "these are", "this is", "these look like", "they are", "there are", "there is", "it is", "its",
    "images of", "image of", "pictures of", "picture of", "photos of", "photo of", "all", "mostly",
    "some", "many", "lots of", "a lot of", "kind of", "sort of", "type of", "types of",
)
_ARTICLES = {"a", "an", "the"}
# Singulars that the suffix rules would get wrong.
_IRREGULAR = {
    "people": "person", "men": "man", "women": "woman", "children": "child", "feet": "foot",
    "teeth": "tooth", "mice": "mouse", "geese": "goose", "leaves": "leaf", "knives": "knife",
    "wolves": "wolf", "shelves": "shelf", "halves": "half", "loaves": "loaf", "lives": "life",
    "wives": "wife", "calves": "calf", "oxen": "ox", "dice": "die", "sheep": "sheep", "fish": "fish",
    "deer": "deer", "series": "series", "species": "species", "grass": "grass", "glass": "glass",
    "news": "news", "pants": "pants", "jeans": "jeans", "scissors": "scissors", "stairs": "stairs",
    "clothes": "clothes", "glasses": "glasses", "bus": "bus", "buses": "bus", "gases": "gas", "gas": "gas",
    "lens": "lens", "lenses": "lens",
}
# Words ending in -s that are already singular (and their -ss/-us/-is relatives below).
_KEEP_S_ENDINGS = ("ss", "us", "is", "ous")
_NUMBER_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
# Broden appends a category tag to some label names (e.g. "sky-s", "red-c").
_BRODEN_SUFFIX = re.compile(r"-(s|c)$")
# Punctuation kept inside a word ("t-shirt", "salt & pepper", "rock/stone"); everything else that is
# not a letter, a combining mark or a digit (of any script) becomes a space.
_KEEP_PUNCTUATION = frozenset("' /&-")
_SPACES = re.compile(r"\s+")

# Broden's `material` is our texture; the crowd's "none" means "no clear concept".
CATEGORY_MAP = {"material": "texture", "surface": "texture", "region": "texture", "colour": "color"}


def normalize_category(category: str) -> str:
    cat = fold(category).strip()
    return CATEGORY_MAP.get(cat, cat)


def gold_alternatives(gold_word: str) -> list[str]:
    """A gold word may list accepted alternatives separated by '|' or ',' (as the crowd app stores them)."""
    return [part.strip() for part in re.split(r"[|,]", gold_word or "") if part.strip()]


def singularize(word: str) -> str:
    """Rule-based English singular of one word (good enough for concept names, not a full lemmatiser)."""
    w = word
    if w in _IRREGULAR:
        return _IRREGULAR[w]
    if len(w) <= 3 or not w.endswith("s") or w.endswith(_KEEP_S_ENDINGS):
        return w
    if w.endswith("ies") and len(w) > 4:
        return w[:-3] + "y"
    if w.endswith(("sses", "shes", "ches", "xes", "zes")):
        return w[:-2]
    if w.endswith("oes") and len(w) > 4:
        return w[:-2]
    return w[:-1]


def strip_broden_suffix(name: str) -> str:
    # A display name: lower case (as Broden's names are) but not case-folded, so "straße" keeps its ß.
    return _BRODEN_SUFFIX.sub("", unicodedata.normalize("NFC", name).strip().lower())


def _word_char(ch: str) -> bool:
    # Letters (L*), combining marks (M*: Devanagari vowel signs, Thai tone marks) and digits (N*) of any
    # script stay; an ASCII-only rule turned "café & crème" into "caf & cr me".
    return ch in _KEEP_PUNCTUATION or unicodedata.category(ch)[0] in "LMN"


def fold(text: str) -> str:
    """Unicode NFC after case folding: "Straße", "STRASSE" and a decomposed "e" + U+0301 compare equal."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text or "").casefold())


def normalize_word(text: str) -> str:
    """Case-fold, trim, drop filler and articles, collapse spaces, singular forms; words in any script.

    >>> normalize_word("  These are   the Dogs ")
    'dog'
    >>> normalize_word("Café & Crème")
    'café & crème'
    """
    s = fold(text).replace("_", " ").strip()
    s = "".join(ch if _word_char(ch) else " " for ch in s)
    s = _SPACES.sub(" ", s).strip(" -'/")
    changed = True
    while changed:  # filler can stack: "these are images of ..."
        changed = False
        for prefix in _FILLER_PREFIXES:
            if s == prefix:
                s = ""
                changed = True
            elif s.startswith(prefix + " "):
                s = s[len(prefix) + 1:]
                changed = True
    words = [w for w in s.split(" ") if w and w not in _ARTICLES]
    return " ".join(singularize(w) for w in words)


class Vocabulary:
    """A dataset's concept names plus its synonym table, for exact-or-synonym matching."""

    def __init__(self, concept_names: Iterable[str], synonyms: Mapping[str, str] | None = None) -> None:
        # normalised form -> display name of the concept (Broden suffix stripped)
        self.concepts: dict[str, str] = {}
        for name in concept_names:
            display = strip_broden_suffix(name)
            self.concepts.setdefault(normalize_word(display), display)
        self.synonyms: dict[str, str] = {normalize_word(k): normalize_word(v) for k, v in (synonyms or {}).items()}
        self._digits = any(key.isdigit() for key in self.concepts)

    def canonical(self, text: str) -> str:
        """The normalised word, replaced by its synonym target when the table has one."""
        word = normalize_word(text)
        seen = set()
        while word in self.synonyms and word not in seen:  # chains like "pup" -> "puppy" -> "dog"
            seen.add(word)
            word = self.synonyms[word]
        if self._digits and word in _NUMBER_WORDS:  # "zero" for the mixture's digit "0"
            word = _NUMBER_WORDS[word]
        if self._digits and word.startswith("digit ") and word[6:].strip().isdigit():
            word = word[6:].strip()
        return word

    def match(self, text: str) -> str:
        """The concept (display name) this word names, exact or through a synonym; '' if none."""
        word = self.canonical(text)
        return self.concepts.get(word, "")

    def same(self, a: str, b: str) -> bool:
        """Two words name the same thing (exact after normalising, or via the synonym table)."""
        ca, cb = self.canonical(a), self.canonical(strip_broden_suffix(b))
        return bool(ca) and ca == cb

    def names_gold(self, word: str, gold_word: str) -> bool:
        """The word names one of a gold unit's accepted alternatives."""
        return any(self.same(word, alt) for alt in gold_alternatives(gold_word))
