"""Numbers, sums and durations as people say them (and as speech recognisers write them).

The intent templates capture free text ("twelve times seven", "12 x 7", "an hour and a half"); these
parsers turn it into what the tools take (``"12 * 7"``, ``5400.0``) and, as important, refuse anything
that is not a number, a sum or a duration, so "what is love" falls through to the LLM instead of
reaching the calculator.
"""

from __future__ import annotations

import re

ONES: dict[str, int] = {
    "zero": 0,
    "oh": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS: dict[str, int] = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
SCALES: dict[str, int] = {"thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}

_TOKEN = re.compile(r"\d+(?:\.\d+)?|\.\d+|[a-z]+|\*\*|[-+*/x×÷^()%]")
_DIGITS = re.compile(r"^(?:\d+(?:\.\d+)?|\.\d+)$")


def tokenize(text: str) -> list[str]:
    """Lower-case words, numbers and operator symbols of ``text``; punctuation is dropped, thousands
    commas (``1,000``) are removed and hyphens between words ("twenty-one", "5-minute") split them."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)
    text = re.sub(r"(?<=[a-z0-9])-(?=[a-z])", " ", text)
    text = text.replace("what's", "what is")
    return _TOKEN.findall(text)


def _to_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def parse_number(tokens: list[str], start: int) -> tuple[int | float, int] | None:
    """The number said at ``tokens[start:]`` ("one hundred and five", "12", "3 point 5", "a thousand",
    "2.5 million") and the index after it, or None when no number starts there."""
    index = start
    total = 0.0
    current = 0.0
    seen = False
    last_kind = ""  # "one", "ten", "hundred", "scale", "digits"
    n = len(tokens)
    while index < n:
        token = tokens[index]
        if _DIGITS.match(token) and not seen:
            current = float(token)
            seen, last_kind = True, "digits"
            index += 1
            continue
        if token in ("a", "an") and not seen and index + 1 < n and tokens[index + 1] in ("hundred", *SCALES):
            current, seen, last_kind = 1.0, True, "one"
            index += 1
            continue
        if (
            token in ONES
            and last_kind in ("", "ten", "hundred", "scale")
            and not (last_kind == "ten" and ONES[token] >= 10)
        ):
            if last_kind == "" and seen:
                break
            current += ONES[token]
            seen, last_kind = True, "one"
            index += 1
            continue
        if token in TENS and last_kind in ("", "hundred", "scale"):
            current += TENS[token]
            seen, last_kind = True, "ten"
            index += 1
            continue
        if token == "hundred" and seen and last_kind in ("one", "digits") and current < 100:
            current *= 100
            last_kind = "hundred"
            index += 1
            continue
        if token in SCALES and seen and last_kind in ("one", "ten", "hundred", "digits") and current > 0:
            total += current * SCALES[token]
            current = 0.0
            last_kind = "scale"
            index += 1
            continue
        if (
            token == "and"
            and last_kind in ("hundred", "scale")
            and index + 1 < n
            and (tokens[index + 1] in ONES or tokens[index + 1] in TENS)
        ):
            index += 1
            continue
        if token == "point" and seen and last_kind in ("one", "ten", "digits") and index + 1 < n:
            digits = ""
            probe = index + 1
            while probe < n and tokens[probe] in ONES and ONES[tokens[probe]] < 10:
                digits += str(ONES[tokens[probe]])
                probe += 1
            if not digits and probe < n and tokens[probe].isdigit():
                digits = tokens[probe]
                probe += 1
            if not digits:
                break
            current += float("0." + digits)
            index = probe
            last_kind = "point"
            break
        break
    if not seen:
        return None
    return _to_number(total + current), index


def words_to_number(text: str) -> int | float | None:
    """The number that is the whole of ``text`` ("two thousand and twenty six", "1,000", "3.5"),
    or None."""
    tokens = tokenize(text)
    parsed = parse_number(tokens, 0)
    if parsed is None or parsed[1] != len(tokens):
        return None
    return parsed[0]


# ---------------------------------------------------------------- arithmetic

#: Spoken operators, longest first, and what they mean in Python.
OPERATORS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("to", "the", "power", "of"), "**"),
    (("raised", "to", "the", "power", "of"), "**"),
    (("raised", "to", "the"), "**"),
    (("raised", "to"), "**"),
    (("to", "the", "power"), "**"),
    (("multiplied", "by"), "*"),
    (("divided", "by"), "/"),
    (("take", "away"), "-"),
    (("percent", "of"), "/ 100 *"),
    (("plus",), "+"),
    (("minus",), "-"),
    (("times",), "*"),
    (("x",), "*"),
    (("×",), "*"),
    (("into",), "*"),
    (("over",), "/"),
    (("÷",), "/"),
    (("mod",), "%"),
    (("modulo",), "%"),
    (("+",), "+"),
    (("-",), "-"),
    (("*",), "*"),
    (("**",), "**"),
    (("/",), "/"),
    (("^",), "**"),
    (("%",), "%"),
)
POSTFIX: dict[str, str] = {"squared": "** 2", "cubed": "** 3"}
UNARY_MINUS = ("minus", "negative", "-")
FILLER = {"please", "exactly", "equal", "equals", "the", "answer", "result", "to", "of"}
"""Words a spoken sum may contain that do not change it ("what is 3 plus 4 exactly")."""


def _match_operator(tokens: list[str], index: int) -> tuple[str, int] | None:
    for words, python in OPERATORS:
        if tuple(tokens[index : index + len(words)]) == words:
            return python, index + len(words)
    return None


def spoken_arithmetic(text: str) -> str | None:
    """``"twelve times seven"`` → ``"12 * 7"``; ``"what's 1,000 + 3.5"``-style captures too. None unless
    the text is numbers joined by at least one operator (so "love" or "the time" are refused)."""
    tokens = tokenize(text)
    out: list[str] = []
    operators = 0
    expect_number = True
    depth = 0
    index = 0
    while index < len(tokens):
        token = tokens[index]
        matched = None if expect_number else _match_operator(tokens, index)
        if matched is None and token in FILLER:
            index += 1
            continue
        if expect_number:
            if token == "(":
                out.append("(")
                depth += 1
                index += 1
                continue
            if token in UNARY_MINUS:
                out.append("-")
                index += 1
                continue
            parsed = parse_number(tokens, index)
            if parsed is None:
                return None
            value, index = parsed
            out.append(str(value))
            expect_number = False
            continue
        if token == ")" and depth > 0:
            out.append(")")
            depth -= 1
            index += 1
            continue
        if token in POSTFIX:
            out.append(POSTFIX[token])
            operators += 1
            index += 1
            continue
        if matched is None:
            return None
        python, index = matched
        out.append(python)
        operators += 1
        expect_number = True
    if expect_number or depth != 0 or operators == 0:
        return None
    return " ".join(out).replace("( ", "(").replace(" )", ")")


# ---------------------------------------------------------------- durations

UNIT_SECONDS: dict[str, int] = {
    "second": 1,
    "seconds": 1,
    "sec": 1,
    "secs": 1,
    "s": 1,
    "minute": 60,
    "minutes": 60,
    "min": 60,
    "mins": 60,
    "m": 60,
    "hour": 3600,
    "hours": 3600,
    "hr": 3600,
    "hrs": 3600,
    "h": 3600,
}


def parse_duration(text: str) -> float | None:
    """Seconds said in ``text``: "five minutes", "1 hour and 30 minutes", "an hour and a half",
    "two and a half minutes", "half an hour", "90 seconds", "a quarter of an hour", "1.5 hours";
    None when ``text`` is anything else."""
    tokens = [token for token in tokenize(text) if token not in ("please", "exactly")]
    total = 0.0
    index = 0
    parts = 0
    n = len(tokens)
    while index < n:
        token = tokens[index]
        if token == "and" and parts:
            index += 1
            continue
        fraction = {"half": 0.5, "quarter": 0.25}.get(token)
        if fraction is not None:
            # "half an hour", "half a minute", "a quarter of an hour", "quarter hour"
            probe = index + 1
            if probe < n and tokens[probe] == "of":
                probe += 1
            if probe < n and tokens[probe] in ("a", "an"):
                probe += 1
            if probe < n and tokens[probe] in UNIT_SECONDS:
                total += fraction * UNIT_SECONDS[tokens[probe]]
                index = probe + 1
                parts += 1
                continue
            return None
        if token == "a" and index + 1 < n and tokens[index + 1] in ("quarter", "half"):
            index += 1
            continue
        if token in ("a", "an") and index + 1 < n and tokens[index + 1] in UNIT_SECONDS:
            amount: float = 1.0
            index += 1
        else:
            parsed = parse_number(tokens, index)
            if parsed is None:
                return None
            amount, index = float(parsed[0]), parsed[1]
            # "two and a half minutes"
            if tokens[index : index + 3] == ["and", "a", "half"]:
                amount += 0.5
                index += 3
        if index >= n or tokens[index] not in UNIT_SECONDS:
            return None
        unit = UNIT_SECONDS[tokens[index]]
        index += 1
        total += amount * unit
        parts += 1
        # "an hour and a half"
        if tokens[index : index + 3] == ["and", "a", "half"]:
            total += 0.5 * unit
            index += 3
    if parts == 0 or total <= 0:
        return None
    return total
