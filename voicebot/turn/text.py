"""Text for the ear: cleaning model output for speech, cutting a token stream into speakable pieces,
and estimating how much of a reply the user heard before interrupting it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# --- clean-up -------------------------------------------------------------------------------------

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
_CODE_FENCE = re.compile(r"```[^\n]*")
_INLINE_MARKS = re.compile(r"(\*\*|__|\*|`|~~)")
_UNDERSCORE_EMPHASIS = re.compile(r"(?<!\w)_(\S(?:.*?\S)?)_(?!\w)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*", re.MULTILINE)
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", re.MULTILINE)
_QUOTE = re.compile(r"^\s*>\s?", re.MULTILINE)
_TABLE_RULE = re.compile(r"^\s*\|?[\s:|-]+\|[\s:|-]*$", re.MULTILINE)
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols
    "\U00002600-\U000027bf"  # misc symbols and dingbats
    "\U0001f1e6-\U0001f1ff"  # flags
    "\U0000fe0f\U0000200d"  # variation selector, zero-width joiner
    "]+"
)
_SPACES = re.compile(r"\s+")
_CLOCK_TIME = re.compile(r"(?<![\d:.,])(\d{1,2}):([0-5]\d)(?![\d:])(\s*(?:[AaPp]\.?[Mm]\b\.?))?")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


def clean_for_speech(text: str) -> str:
    """Turn model output into plain words a TTS voice can read.

    Markdown marks, list bullets, headings, code fences, emoji and URLs are removed (a link keeps its
    label); what is left is one line of prose. Returns "" when nothing speakable remains.
    """
    text = _CODE_FENCE.sub(" ", text)
    text = _MD_LINK.sub(r"\1", text)
    text = _URL.sub(" ", text)
    text = _TABLE_RULE.sub(" ", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _QUOTE.sub("", text)
    text = _INLINE_MARKS.sub("", text)
    text = _UNDERSCORE_EMPHASIS.sub(r"\1", text)
    text = text.replace("|", " ")
    text = _EMOJI.sub(" ", text)
    text = say_clock_times(text)
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if not any(ch.isalnum() for ch in text):
        return ""
    return text


def _said_clock_time(match: re.Match[str]) -> str:
    hour, minute = int(match[1]), match[2]
    marker = f" {match[3].strip()}" if match[3] else ""  # set apart from the number, as "7:05 am" is
    if hour > 24:
        return match[0]
    if minute == "00":
        if marker:
            return f"{hour}{marker}"
        return f"{hour} o'clock" if 1 <= hour <= 12 else f"{hour} hundred"
    if minute.startswith("0"):
        return f"{hour} oh {minute[1]}{marker}"
    return f"{hour} {minute}{marker}"


def say_clock_times(text: str) -> str:
    """Write clock times the way people say them, for the voice: "5:07 PM" → "5 oh 7 PM", "5:00 PM" →
    "5 PM", "9:00" → "9 o'clock", "14:30" → "14 30".

    Piper's phonemizer reads "5:07" digit by digit ("five zero seven") and "5:00" as "five hundred"
    or "five zero zero", which is not how anyone says a time. Only the audio changes: the text shown
    and logged keeps the digits.
    """
    return _CLOCK_TIME.sub(_said_clock_time, text)


# --- splitting ------------------------------------------------------------------------------------

_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "a.m", "p.m"}
    | {"u.s", "u.k", "no", "fig", "approx", "dept", "est", "inc", "ltd"}
)
_SENTENCE_END = re.compile(r"[.!?…]+[\"')\]]*(?=\s)|\n+")
_CLAUSE_END = re.compile(r"[,;:—–](?=\s)")


def _is_false_end(buffer: str, end: int) -> bool:
    """Whether the period ending at ``end`` closes an abbreviation, an initial or a list number."""
    if buffer[end - 1] != ".":
        return False
    words = buffer[: end - 1].split()
    if not words:
        return True
    word = words[-1].lower().lstrip("([\"'")
    if word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha()):
        return True
    # "1. " at the start of a segment is a list number; line breaks always cut, so a list item
    # always starts a segment.
    return word.isdigit() and len(words) == 1


class SentenceSplitter:
    """Cuts a stream of text pieces into speakable segments as soon as each one is complete.

    A segment ends at a sentence end (``.``, ``!``, ``?`` followed by white space) or a line break.
    To get the first sound out sooner, the *first* segment of a reply may also end at a clause
    boundary (comma, semicolon, colon, dash) once it holds ``first_clause_words`` words, and with
    ``first_segment_words`` it ends after that many words at the latest, at the first word that is
    not a small glue word ("the", "a"…): a long first sentence would otherwise keep the user
    waiting while the model writes it, and the rest follows while the first words are spoken.

    The next segments grow: the second may end at a clause or after twice as many words, the third
    after four times as many (:data:`GROWING_SEGMENTS`), then segments are whole sentences. The
    words after a short first segment must be written and synthesised while it plays (about a
    second); the rest of a long first sentence in one piece often took longer than that when other
    sessions shared the cores, and the listener heard a break. Growing pieces keep each one shorter
    to make than the audio already waiting before it.

    Any segment longer than ``max_chars`` is cut at its last clause boundary or space, so a run-on
    sentence does not hold the voice back.
    """

    def __init__(self, first_clause_words: int = 4, max_chars: int = 220, first_segment_words: int = 0) -> None:
        self._buffer = ""
        self._emitted = 0
        self._first_clause_words = first_clause_words
        self._first_segment_words = first_segment_words
        self._max_chars = max_chars

    def feed(self, piece: str) -> Iterator[str]:
        """Add a piece of text; yield every segment it completes."""
        self._buffer += piece
        while True:
            cut = self._next_cut()
            if cut is None:
                return
            segment, self._buffer = self._buffer[:cut].strip(), self._buffer[cut:]
            if segment:
                self._emitted += 1
                yield segment

    def flush(self) -> Iterator[str]:
        """Yield what is left at the end of the stream."""
        segment, self._buffer = self._buffer.strip(), ""
        if segment:
            self._emitted += 1
            yield segment

    def _next_cut(self) -> int | None:
        """Where the next complete segment ends in the buffer (the earliest boundary), or None."""
        cuts: list[int] = []
        for match in _SENTENCE_END.finditer(self._buffer):
            is_end = match.group().startswith("\n") or not _is_false_end(self._buffer, match.end())
            if is_end and self._buffer[: match.end()].strip():
                cuts.append(match.end())
                break
        growing = bool(self._first_segment_words) and self._emitted < GROWING_SEGMENTS
        if growing or self._emitted == 0:
            for match in _CLAUSE_END.finditer(self._buffer):
                if len(self._buffer[: match.start()].split()) >= self._first_clause_words:
                    cuts.append(match.end())
                    break
        if growing and (cut := self._words_cut(self._first_segment_words << self._emitted)) is not None:
            cuts.append(cut)
        if cuts:
            return min(cuts)
        if len(self._buffer) > self._max_chars:
            return _long_cut(self._buffer, self._max_chars)
        return None

    def _words_cut(self, words: int) -> int | None:
        """The end of a segment by word count: after word ``words`` or the first complete word past
        it that is not glue; ``None`` until such a word is complete."""
        for count, match in enumerate(_WORD.finditer(self._buffer), start=1):
            if match.end() == len(self._buffer):
                return None  # the word may still grow
            word = match.group().lower().strip("\"'()[],;:")
            if count >= words and word not in _GLUE_WORDS:
                return match.end()
        return None


#: With ``first_segment_words``, this many segments are capped, each at twice the words of the one
#: before (4, 8, 16 by default); sentences come whole after them.
GROWING_SEGMENTS = 3


#: Words a segment cut by its word count should not end on: it would leave the voice hanging mid-phrase.
_GLUE_WORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "and",
        "or",
        "but",
        "in",
        "on",
        "at",
        "for",
        "with",
        "from",
        "by",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "that",
        "these",
        "those",
        "it",
        "i",
        "you",
        "we",
        "they",
        "he",
        "she",
        "not",
        "no",
        "so",
        "if",
        "than",
        "then",
    ]
)
_WORD = re.compile(r"\S+")


def _last_clause_end(head: str) -> int:
    """Where the last clause boundary in ``head`` ends (-1: none)."""
    return max((m.end() for m in _CLAUSE_END.finditer(head)), default=-1)


def _long_cut(text: str, max_chars: int) -> int:
    """Where to cut text longer than ``max_chars``: after its last clause boundary within the limit,
    else at its last space, else at the limit."""
    head = text[:max_chars]
    clause = _last_clause_end(head)
    space = head.rfind(" ")
    return clause if clause > 0 else (space if space > 0 else max_chars)


def split_long(text: str, max_chars: int) -> list[str]:
    """``text`` in pieces of at most ``max_chars``: after the last clause boundary that fits, or else
    at a space, into pieces of about equal length (not a full piece and a stub of two words)."""
    pieces = []
    rest = text.strip()
    while len(rest) > max_chars:
        head = rest[:max_chars]
        cut = _last_clause_end(head)
        if cut <= 0:
            even = len(rest) // -(-len(rest) // max_chars)  # the length of equal pieces
            spaces = [i for i, char in enumerate(head) if char == " "]
            cut = min(spaces, key=lambda i: abs(i - even)) if spaces else max_chars
        piece, rest = rest[:cut].strip(), rest[cut:].strip()
        if piece:
            pieces.append(piece)
    return [*pieces, rest] if rest else pieces


def split_sentences(text: str) -> list[str]:
    """Split a whole text the way the streaming splitter would."""
    splitter = SentenceSplitter()
    return [*splitter.feed(text), *splitter.flush()]


# --- what was heard -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpokenSegment:
    """A piece of reply text and the length of the audio that speaks it."""

    text: str
    duration_ms: float


def heard_text(segments: Sequence[SpokenSegment], played_ms: float) -> str:
    """Estimate what the user heard of a reply, given how much of its audio was played.

    Whole segments whose audio was fully played are kept; of the segment being played when the
    reply was cut, the words are kept in proportion to how much of its audio was played.
    """
    heard: list[str] = []
    elapsed = 0.0
    for segment in segments:
        if played_ms >= elapsed + segment.duration_ms:
            heard.append(segment.text)
            elapsed += segment.duration_ms
            continue
        if segment.duration_ms > 0 and played_ms > elapsed:
            words = segment.text.split()
            fraction = (played_ms - elapsed) / segment.duration_ms
            kept = int(len(words) * fraction)
            if kept:
                heard.append(" ".join(words[:kept]))
        break
    return " ".join(heard)
