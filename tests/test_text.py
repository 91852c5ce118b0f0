"""Speech clean-up, streaming sentence splitting, and the estimate of what was heard."""

from __future__ import annotations

import pytest

from voicebot.turn.text import (
    SentenceSplitter,
    SpokenSegment,
    clean_for_speech,
    heard_text,
    split_long,
    split_sentences,
)


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("**Paris** is the _capital_.", "Paris is the capital."),
        ("# Answer\nIt is `42`.", "Answer It is 42."),
        ("- first item\n- second item", "first item second item"),
        ("1. Boil water.\n2. Add the egg.", "Boil water. Add the egg."),
        ("See [the docs](https://example.com/docs) for more.", "See the docs for more."),
        ("Visit https://example.com/a?b=c or www.example.org today.", "Visit or today."),
        ("Great question! 😀🎉 Let's go 🚀.", "Great question! Let's go."),
        ("> quoted wisdom", "quoted wisdom"),
        ("```python\nprint('hi')\n```", "print('hi')"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "a b 1 2"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("🎉🎉", ""),
        ("   ", ""),
        ("**", ""),
    ],
)
def test_clean_for_speech(raw: str, spoken: str) -> None:
    assert clean_for_speech(raw) == spoken


@pytest.mark.parametrize(
    ("written", "said"),
    [
        ("It's 5:07 AM.", "It's 5 oh 7 AM."),
        ("It's 5:48 PM.", "It's 5 48 PM."),
        ("It's 5:00 PM.", "It's 5 PM."),
        ("at 7:05am, not 7:05 amazing", "at 7 oh 5 am, not 7 oh 5 amazing"),
        ("It's 12:30 p.m. now", "It's 12 30 p.m. now"),
        ("Meet at 9:00.", "Meet at 9 o'clock."),
        ("The train leaves at 14:00, or 14:05.", "The train leaves at 14 hundred, or 14 oh 5."),
        ("John 3:16", "John 3 16"),
        ("10:30:15 is a timestamp, 3:1 a ratio.", "10:30:15 is a timestamp, 3:1 a ratio."),
        ("25:30 is no time.", "25:30 is no time."),
    ],
)
def test_clock_times_are_said_as_people_say_them(written: str, said: str) -> None:
    assert clean_for_speech(written) == said


def stream(text: str, size: int) -> list[str]:
    """Feed ``text`` in pieces of ``size`` characters, as a token stream would."""
    splitter = SentenceSplitter()
    out: list[str] = []
    for start in range(0, len(text), size):
        out += splitter.feed(text[start : start + size])
    return out + list(splitter.flush())


@pytest.mark.parametrize("size", [1, 3, 7, 1000])
def test_sentences_come_out_whole_whatever_the_piece_size(size: int) -> None:
    text = "Paris is the capital of France. It has about two million people! Want to know more?"
    assert stream(text, size) == [
        "Paris is the capital of France.",
        "It has about two million people!",
        "Want to know more?",
    ]


def test_a_sentence_is_emitted_as_soon_as_it_is_complete() -> None:
    splitter = SentenceSplitter()
    assert list(splitter.feed("Hello there")) == []
    assert list(splitter.feed(". How")) == ["Hello there."]
    assert list(splitter.feed(" are you?")) == []  # no white space after "?" yet
    assert list(splitter.feed(" ")) == ["How are you?"]
    assert list(splitter.flush()) == []


def test_first_segment_may_end_at_a_clause_to_speak_sooner() -> None:
    text = "Well, the capital of France, as you may know, is Paris. Later sentences, like this one, stay whole."
    assert split_sentences(text) == [
        "Well, the capital of France,",
        "as you may know, is Paris.",
        "Later sentences, like this one, stay whole.",
    ]


def test_abbreviations_numbers_and_decimals_do_not_end_sentences() -> None:
    text = "Dr. Smith paid $3.50 at 5 p.m. today, e.g. for tea. Then he left."
    # (the first segment ends at the comma: clause rule)
    assert split_sentences(text) == ["Dr. Smith paid $3.50 at 5 p.m. today,", "e.g. for tea.", "Then he left."]


def test_list_items_and_line_breaks() -> None:
    assert split_sentences("Steps:\n1. Boil water.\n2. Add the egg") == ["Steps:", "1. Boil water.", "2. Add the egg"]


def test_run_on_text_is_cut_before_it_gets_too_long() -> None:
    text = " ".join(["word"] * 100)
    segments = split_sentences(text)
    assert len(segments) > 1
    assert all(len(segment) <= 220 for segment in segments)
    assert " ".join(segments) == text


def test_empty_stream() -> None:
    assert split_sentences("") == []
    assert split_sentences("   \n ") == []


SEGMENTS = [SpokenSegment("The capital is Paris.", 1000.0), SpokenSegment("It is lovely in spring.", 1000.0)]


@pytest.mark.parametrize(
    ("played_ms", "heard"),
    [
        (0, ""),
        (100, ""),
        (500, "The capital"),
        (999, "The capital is"),
        (1000, "The capital is Paris."),
        (1600, "The capital is Paris. It is lovely"),
        (2000, "The capital is Paris. It is lovely in spring."),
        (99_999, "The capital is Paris. It is lovely in spring."),
    ],
)
def test_heard_text_keeps_what_was_played(played_ms: float, heard: str) -> None:
    assert heard_text(SEGMENTS, played_ms) == heard


def test_heard_text_of_nothing() -> None:
    assert heard_text([], 5000) == ""


def first_segments(text: str, words: int, size: int = 1) -> list[str]:
    splitter = SentenceSplitter(first_segment_words=words)
    out: list[str] = []
    for start in range(0, len(text), size):
        out += splitter.feed(text[start : start + size])
    return out + list(splitter.flush())


def test_the_first_segment_is_capped_at_a_few_words_then_sentences_come_whole() -> None:
    text = "Paris is the capital of France. It has about two million people!"
    assert first_segments(text, 4) == ["Paris is the capital", "of France.", "It has about two million people!"]
    assert first_segments(text, 0) == ["Paris is the capital of France.", "It has about two million people!"]


def test_the_segments_after_the_first_grow_then_sentences_come_whole() -> None:
    text = (
        "Boiling an egg takes a pot of water that you bring to the boil before you lower the egg in "
        "with a spoon and wait for about seven minutes or so. Then cool it in cold water for a minute."
    )
    segments = first_segments(text, 2)
    assert segments == [
        "Boiling an egg",  # 2 words at most, but not ending on a glue word
        "takes a pot of water",  # 4
        "that you bring to the boil before you lower",  # 8
        "the egg in with a spoon and wait for about seven minutes or so.",  # 16: the sentence ends first
        "Then cool it in cold water for a minute.",
    ]
    assert " ".join(segments) == text
    # A clause ends a growing segment sooner, as it does the first.
    assert first_segments("Yes. It is a fine day, and the sun is out, so go for a walk.", 4)[1:] == [
        "It is a fine day,",
        "and the sun is out,",
        "so go for a walk.",
    ]


def test_the_first_segment_does_not_end_on_a_glue_word() -> None:
    # The 4th word is "of": the segment goes on to the next word that can end a phrase.
    assert first_segments("The capital of the United States is Washington.", 3) == [
        "The capital of the United",
        "States is Washington.",
    ]


def test_a_shorter_sentence_or_clause_still_ends_the_first_segment_first() -> None:
    assert first_segments("Sure! Here is a long story about a dragon.", 4)[0] == "Sure!"
    assert first_segments("Once upon a time, there lived a dragon.", 6)[0] == "Once upon a time,"


def test_a_word_is_not_cut_while_it_may_still_grow() -> None:
    splitter = SentenceSplitter(first_segment_words=2)
    assert list(splitter.feed("Hello wonder")) == []
    assert list(splitter.feed("ful")) == []
    assert list(splitter.feed(" world")) == ["Hello wonderful"]


def test_long_text_is_split_for_the_voice_at_clauses_or_into_even_pieces() -> None:
    text = (
        "Boiling an egg is simple: place the egg in a pot, cover it with cold water, bring it to a boil over "
        "medium heat and then let it simmer for about nine minutes before cooling it in ice water."
    )
    pieces = split_long(text, 100)
    assert pieces == [
        "Boiling an egg is simple: place the egg in a pot, cover it with cold water,",
        "bring it to a boil over medium heat and then let it simmer",  # no clause: two even halves,
        "for about nine minutes before cooling it in ice water.",  # not 99 characters and a stub
    ]
    assert " ".join(pieces) == text
    assert split_long("Short.", 100) == ["Short."]
    assert split_long("  ", 100) == []
    assert [len(piece) for piece in split_long("x" * 250, 100)] == [100, 100, 50]  # no space at all
