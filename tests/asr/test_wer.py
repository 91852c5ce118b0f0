"""Word error rate: normalisation forgives spelling choices, the distance counts real errors."""

from __future__ import annotations

import pytest

from voicebot.bench.wer import edit_distance, normalize, number_words, wer, word_errors


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (0, "zero"),
        (12, "twelve"),
        (40, "forty"),
        (81, "eighty one"),
        (100, "one hundred"),
        (2018, "two thousand eighteen"),
        (1_000_305, "one million three hundred five"),
    ],
)
def test_number_words(value: int, words: str) -> None:
    assert number_words(value) == words


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("What's the weather-like in Paris, tomorrow?", "what is the weather like in paris tomorrow"),
        ("Set a timer for 12 minutes.", "set a timer for twelve minutes"),
        ("Wake me at 7:30", "wake me at seven thirty"),
        ("Wake me at 7:00", "wake me at seven"),
        ("on the 21st", "on the twenty first"),
        ("1,250 people", "one thousand two hundred fifty people"),
        ("3.5% of it", "three point five percent of it"),
        ("OK, I'm here… don't go!", "okay i am here do not go"),
        ("Rock & roll", "rock and roll"),
        ("Will it rain to-morrow or to-night?", "will it rain tomorrow or tonight"),
        ("  ", ""),
    ],
)
def test_normalize(text: str, words: str) -> None:
    assert normalize(text) == words.split()


def test_edit_distance_counts_substitutions_deletions_and_insertions() -> None:
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "b", "c", "d", "e"]) == 2
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance(["the", "cat", "sat"], ["sat", "the", "cat"]) == 2


def test_numbers_as_digits_or_words_are_the_same_words() -> None:
    assert wer("Set a timer for twelve minutes.", "set a timer for 12 minutes") == 0.0
    assert wer("Who won the world cup in two thousand eighteen?", "Who won the World Cup in 2018?") == 0.0


def test_wer_over_a_set_divides_total_errors_by_total_reference_words() -> None:
    result = word_errors([("one two three four", "one two three four"), ("a b", "a c d")])
    assert (result.errors, result.words) == (2, 6)
    assert result.wer == pytest.approx(2 / 6)


def test_wer_of_empty_references() -> None:
    assert word_errors([("", "")]).wer == 0.0
    assert word_errors([("", "hello")]).wer == 1.0
