"""The calculator evaluates arithmetic exactly and refuses everything else with a reason."""

from __future__ import annotations

import time

import pytest

from voicebot.tools.base import ToolContext, ToolRegistry
from voicebot.tools.calculator import (
    CALCULATOR,
    MAX_EXPRESSION_CHARS,
    CalculatorError,
    evaluate,
    format_number,
    spoken_expression,
)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("12 * 7", 84),
        ("12 x 7", 84),
        ("12×7", 84),
        ("3 + 4", 7),
        ("10 - 15", -5),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("2 ** 10", 1024),
        ("2^10", 1024),
        ("-3 * 4", -12),
        ("-(3 + 4)", -7),
        ("(3 + 4) * (5 - 2)", 21),
        ("1,000,000 / 4", 250000),
        ("0.1 + 0.2", 0.30000000000000004),
        ("2 ** -1", 0.5),
        ("12 ÷ 4", 3),
        ("What is 6*7?", None),  # words are not arithmetic
    ],
)
def test_evaluates_arithmetic(expression: str, expected: float | None) -> None:
    if expected is None:
        with pytest.raises(CalculatorError):
            evaluate(expression)
    else:
        assert evaluate(expression) == expected


@pytest.mark.parametrize(
    ("hostile", "reason"),
    [
        ("__import__('os').system('echo hacked')", "calling a function"),
        ("os.system", "attribute access"),
        ("x", "the name 'x'"),
        ("open('/etc/passwd').read()", "calling a function"),
        ("(1).__class__", "attribute access"),
        ("[1, 2][0]", "indexing"),
        ("'a' * 10", "only numbers"),
        ("True + 1", "only numbers"),
        ("1 if 1 else 2", "IfExp"),
        ("1 < 2", "comparison"),
        ("1 << 1000000", "operator LShift"),
        ("lambda: 1", "Lambda"),
        ("9 ** 9 ** 9", "exponents larger than"),
        ("10 ** 1000", "too large"),
        ("2 ** 400", "too large"),
        ("1e308 * 10", "too large"),
        ("1 / 0", "divide by zero"),
        ("5 % 0", "divide by zero"),
        ("0 ** -1", "negative power"),
        ("(-8) ** 0.5", "no real fractional power"),
        ("(" * 30 + "1" + ")" * 30, "nested"),
        ("-" * 150 + "1", "nested too deeply"),
        ("1 +", "not an arithmetic expression"),
        ("", "empty"),
        ("1 + " * 100 + "1", "longer than"),
    ],
)
def test_refuses_hostile_input_with_a_reason(hostile: str, reason: str) -> None:
    with pytest.raises(CalculatorError, match=reason):
        evaluate(hostile)


def test_huge_power_is_refused_quickly() -> None:
    started = time.perf_counter()
    for expression in ("999999 ** 999", "9 ** 9 ** 9", "(10 ** 50) ** 3", "2 ** 332 * 2 ** 332"):
        with pytest.raises(CalculatorError):
            evaluate(expression)
    assert time.perf_counter() - started < 0.5


def test_many_parentheses_side_by_side_are_fine() -> None:
    assert evaluate("(1 + 2) * (3 + 4) - (5 * (6 - 7)) + ((((8))))") == 34


def test_length_limit_is_the_documented_one() -> None:
    ok = "1+" * ((MAX_EXPRESSION_CHARS - 1) // 2) + "1"
    assert len(ok) <= MAX_EXPRESSION_CHARS
    assert evaluate(ok) == (MAX_EXPRESSION_CHARS - 1) // 2 + 1


@pytest.mark.parametrize(
    ("value", "text"),
    [(84, "84"), (3.5, "3.5"), (125.0, "125"), (1 / 3, "0.3333333333"), (-12, "-12"), (2.5e-9, "2.5e-09")],
)
def test_formats_numbers_for_speech(value: float, text: str) -> None:
    assert format_number(value) == text


@pytest.mark.parametrize(
    ("expression", "words"),
    [
        ("12 * 7", "12 times 7"),
        ("3 + 4", "3 plus 4"),
        ("1000 / 8", "1000 divided by 8"),
        ("5 ** 2", "5 squared"),
        ("2 ** 10", "2 to the power of 10"),
        ("-3 * 4", "minus 3 times 4"),
        ("15 / 100 * 80", "15 percent of 80"),
    ],
)
def test_reads_expressions_as_words(expression: str, words: str) -> None:
    assert spoken_expression(expression) == words


async def test_tool_answers_and_fails_through_the_registry() -> None:
    registry = ToolRegistry([CALCULATOR])
    result = await registry.call("calculator", {"expression": "12 * 7"}, ToolContext())
    assert result.ok
    assert result.data["value"] == 84
    assert result.text == "12 * 7 = 84"
    assert result.spoken == "12 times 7 is 84."

    failed = await registry.call("calculator", '{"expression": "__import__(\\"os\\")"}', ToolContext())
    assert not failed.ok
    assert failed.error is not None and "calling a function" in failed.error
    assert failed.text.startswith("Error: ")
