"""Word error rate, after a normalisation that forgives spelling choices rather than mistakes.

ASR engines disagree with a reference transcript about things no listener would call an error:
"12" or "twelve", "What's" or "what is", "weather-like" or "weather like", a missing question mark.
:func:`normalize` maps those to one form (lowercase words, no punctuation, numbers spelled out,
common contractions expanded) so that :func:`wer` counts only real recognition errors. The
normalisation is deliberately simple (no currency, dates or ordinals beyond "1st"…"31st").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_CONTRACTIONS = {
    "what's": "what is",
    "where's": "where is",
    "who's": "who is",
    "how's": "how is",
    "when's": "when is",
    "why's": "why is",
    "that's": "that is",
    "there's": "there is",
    "here's": "here is",
    "it's": "it is",
    "he's": "he is",
    "she's": "she is",
    "let's": "let us",
    "i'm": "i am",
    "you're": "you are",
    "we're": "we are",
    "they're": "they are",
    "i've": "i have",
    "you've": "you have",
    "we've": "we have",
    "i'll": "i will",
    "you'll": "you will",
    "i'd": "i would",
    "you'd": "you would",
    "don't": "do not",
    "doesn't": "does not",
    "didn't": "did not",
    "can't": "cannot",
    "won't": "will not",
    "isn't": "is not",
    "aren't": "are not",
    "wasn't": "was not",
    "shouldn't": "should not",
    "couldn't": "could not",
    "wouldn't": "would not",
}
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "°": " degrees ", "@": " at "}
_SPELLING = {"ok": "okay", "alright": "all right", "can not": "cannot"}
#: Old hyphenated spellings (Moonshine learned them from old books), joined before hyphens split words.
_HYPHENATED = {"to-day": "today", "to-night": "tonight", "to-morrow": "tomorrow"}


def number_words(value: int) -> str:
    """Spell a whole number 0 ≤ value < 10^12 in English words, e.g. 1205 → "one thousand two hundred five"."""
    if value < 0:
        return "minus " + number_words(-value)
    if value < 20:
        return _ONES[value]
    if value < 100:
        tens, ones = divmod(value, 10)
        return _TENS[tens] + ("" if ones == 0 else " " + _ONES[ones])
    for size, name in ((10**9, "billion"), (10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if value >= size:
            high, rest = divmod(value, size)
            return number_words(high) + " " + name + ("" if rest == 0 else " " + number_words(rest))
    raise AssertionError("unreachable")


def _ordinal_words(value: int) -> str:
    words = number_words(value).split()
    last = words[-1]
    if last in _ORDINALS:
        words[-1] = _ORDINALS[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell_numbers(text: str) -> str:
    text = re.sub(r"(\d),(\d{3})\b", r"\1\2", text)  # 1,000 → 1000
    text = re.sub(r"\b(\d{1,2}):(\d{2})\b", lambda m: f"{m[1]} {m[2]}" if m[2] != "00" else m[1], text)  # 7:30
    text = re.sub(r"\b(\d+)(st|nd|rd|th)\b", lambda m: " " + _ordinal_words(int(m[1])) + " ", text)

    def decimal(match: re.Match[str]) -> str:
        whole, fraction = match[1], match[2]
        return f" {number_words(int(whole))} point {' '.join(_ONES[int(d)] for d in fraction)} "

    text = re.sub(r"\b(\d+)\.(\d+)\b", decimal, text)
    return re.sub(r"\d+", lambda m: " " + number_words(int(m[0])) + " " if len(m[0]) <= 12 else m[0], text)


def normalize(text: str) -> list[str]:
    """The words of ``text`` in one canonical form: lowercase, numbers spelled out, contractions expanded,
    hyphens split, punctuation dropped."""
    text = text.lower().replace("’", "'").replace("‘", "'")
    for symbol, spoken in _SYMBOLS.items():
        text = text.replace(symbol, spoken)
    text = _spell_numbers(text)
    for old, new in _HYPHENATED.items():
        text = re.sub(rf"\b{old}\b", new, text)
    text = re.sub(r"[-–—/]", " ", text)
    words: list[str] = []
    for raw in text.split():
        word = re.sub(r"[^a-z0-9']", "", raw).strip("'")
        if not word:
            continue
        words.extend(_CONTRACTIONS.get(word, word).split())
    joined = " ".join(words)
    for variant, canonical in _SPELLING.items():
        joined = re.sub(rf"\b{variant}\b", canonical, joined)
    return joined.split()


def edit_distance(reference: Sequence[str], hypothesis: Sequence[str]) -> int:
    """Word-level Levenshtein distance: substitutions + deletions + insertions."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # deletion
                    current[j - 1] + 1,  # insertion
                    previous[j - 1] + (ref_word != hyp_word),  # substitution or match
                )
            )
        previous = current
    return previous[-1]


@dataclass(frozen=True)
class WerResult:
    """Word errors over a set of utterances."""

    errors: int
    """Substitutions + deletions + insertions, summed over the set."""
    words: int
    """Words in the normalised references."""

    @property
    def wer(self) -> float:
        """errors / words (0.0 for an empty reference set with no errors)."""
        return self.errors / self.words if self.words else float(self.errors > 0)


def word_errors(pairs: Iterable[tuple[str, str]]) -> WerResult:
    """Total errors over ``(reference, hypothesis)`` pairs, each normalised first."""
    errors = words = 0
    for reference, hypothesis in pairs:
        ref_words = normalize(reference)
        errors += edit_distance(ref_words, normalize(hypothesis))
        words += len(ref_words)
    return WerResult(errors, words)


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of one hypothesis against one reference, after normalisation."""
    return word_errors([(reference, hypothesis)]).wer
