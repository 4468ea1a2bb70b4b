"""Checks on annotators' answers, and matching an answer against a gold unit's known concept."""
from __future__ import annotations

import re
import unicodedata

from .models import CATEGORY_CHOICES

CATEGORIES = [value for value, _ in CATEGORY_CHOICES]
NO_CONCEPT = "none"
WORD_MAX = 60
DESCRIPTION_MAX = 1000
# Words are short names of concepts: letters and digits of any script, spaces and a few joiners.
WORD_PATTERN = re.compile(r"^[^\W_](?:[^\W_]|[ \-'/&.,])*$")

_DIGIT_WORDS = {
    "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4",
    "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
}
_FILLERS = ("these are ", "this is ", "images of ", "pictures of ", "the digit ", "digit ", "number ",
            "the ", "a ", "an ")


def clean_word(word: str | None) -> str:
    """Trim and collapse spaces; the stored word keeps the annotator's case."""
    return " ".join((word or "").split())


def validate_answer(*, word: str, category: str, description: str, confidence: int | None) -> dict[str, list[str]]:
    """Field errors of one answer (empty when valid). `word` and `description` are already cleaned."""
    errors: dict[str, list[str]] = {}
    if category not in CATEGORIES:
        errors["category"] = [f"Choose a category: one of {', '.join(CATEGORIES)}."]
    if word:
        if len(word) > WORD_MAX:
            errors["word"] = [f"Use a word or short phrase of at most {WORD_MAX} characters (got {len(word)})."]
        elif not WORD_PATTERN.match(word):
            errors["word"] = ["Use letters, digits, spaces and - ' / & . , only, starting with a letter or digit."]
    elif category != NO_CONCEPT:
        errors["word"] = ['Name the concept with a word or short phrase, or choose "no clear concept".']
    if len(description) > DESCRIPTION_MAX:
        errors["description"] = [f"Keep the description under {DESCRIPTION_MAX} characters (got {len(description)})."]
    elif any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in description):
        errors["description"] = ["The description contains control characters; please retype it."]
    if confidence is not None and not 1 <= confidence <= 5:
        errors["confidence"] = ["Confidence is a number from 1 (a guess) to 5 (certain)."]
    return errors


def normalise_word(word: str) -> str:
    """Lower-case, trim, drop fillers and articles, spell digits as numerals, naive singular."""
    # NFC and case folding, as results.normalize does: "Cafe\u0301" and "CAFÉ" name the gold "café".
    text = " ".join(unicodedata.normalize("NFC", unicodedata.normalize("NFC", word).casefold()).split()).strip(" .,")
    changed = True
    while changed:
        changed = False
        for filler in _FILLERS:
            if text.startswith(filler):
                text = text[len(filler):]
                changed = True
    words = [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in text.split()]
    words = [_DIGIT_WORDS.get(w, w) for w in words]
    return " ".join(words)


def gold_alternatives(gold_word: str) -> set[str]:
    """A gold word may list accepted alternatives separated by '|' or ','."""
    return {normalise_word(part) for part in re.split(r"[|,]", gold_word) if part.strip()}


def matches_gold(*, word: str, category: str, gold_word: str, gold_category: str) -> bool:
    """Right category, and (unless the gold says "no clear concept") one of the gold words."""
    return all(gold_parts(word=word, category=category, gold_word=gold_word, gold_category=gold_category))


def gold_parts(*, word: str, category: str, gold_word: str, gold_category: str) -> tuple[bool, bool]:
    """(word right, category right), each judged on its own, so feedback can say which one missed.
    Any word is right when the gold says "no clear concept" or names no word."""
    gold_category = "texture" if gold_category == "material" else gold_category
    category_ok = category == gold_category
    if gold_category == NO_CONCEPT or not gold_word.strip():
        return True, category_ok
    return normalise_word(word) in gold_alternatives(gold_word), category_ok
