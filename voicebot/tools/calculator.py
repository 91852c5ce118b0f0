"""A safe arithmetic evaluator and the calculator tool built on it.

Models, and people through the intent layer, hand us expressions we did not write, so nothing here
uses ``eval``: the text is parsed with ``ast`` and only a small tree of numbers and arithmetic operators
is walked. Everything else (names, calls, attributes, subscripts, comparisons, strings) is refused with
a reason, and the limits below keep a single expression from eating the CPU or the memory of a server
that other sessions share (``9**9**9`` would take minutes and gigabytes).
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

from voicebot.tools.base import FunctionTool, ToolContext, ToolError, ToolResult, object_schema

MAX_EXPRESSION_CHARS = 200
"""Longer expressions are refused before parsing."""
MAX_DEPTH = 20
"""Deepest nesting of parentheses."""
MAX_TREE_DEPTH = 120
"""Deepest syntax tree (a long sum such as ``1+1+…+1`` is as deep as it has terms)."""
MAX_EXPONENT = 1000
"""Largest absolute exponent of ``**``."""
MAX_MAGNITUDE = 10**100
"""Largest absolute value of any intermediate result (keeps integers small and answers speakable)."""


class CalculatorError(ToolError):
    """The expression is not one the calculator evaluates; the message says why."""


Number = int | float

_BINARY: dict[type[ast.operator], tuple[Callable[[Any, Any], Any], str]] = {
    ast.Add: (operator.add, "plus"),
    ast.Sub: (operator.sub, "minus"),
    ast.Mult: (operator.mul, "times"),
    ast.Div: (operator.truediv, "divided by"),
    ast.FloorDiv: (operator.floordiv, "divided by, rounded down,"),
    ast.Mod: (operator.mod, "modulo"),
    ast.Pow: (operator.pow, "to the power of"),
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.USub: operator.neg, ast.UAdd: operator.pos}


def _normalise(expression: str) -> str:
    """Accept the symbols people and speech recognisers write: × ÷ x, − and thousands commas."""
    text = expression.strip().rstrip("=?.").strip()
    for symbol, python in (("×", "*"), ("÷", "/"), ("−", "-"), ("^", "**"), ("–", "-")):
        text = text.replace(symbol, python)
    text = " ".join(text.split())
    # "12 x 7" (a lone x between numbers is multiplication)
    return _replace_times_x(text)


def _replace_times_x(text: str) -> str:
    out: list[str] = []
    for index, char in enumerate(text):
        if char in "xX":
            before = text[:index].rstrip()
            after = text[index + 1 :].lstrip()
            if (
                before
                and after
                and (before[-1].isdigit() or before[-1] == ")")
                and (after[0].isdigit() or after[0] in "(-")
            ):
                out.append("*")
                continue
        out.append(char)
    return "".join(out)


def _strip_thousands(text: str) -> str:
    """``1,000,000`` → ``1000000`` (a comma between a digit and exactly three digits)."""
    out = []
    for index, char in enumerate(text):
        if (
            char == ","
            and index > 0
            and text[index - 1].isdigit()
            and text[index + 1 : index + 4].isdigit()
            and len(text[index + 1 : index + 4]) == 3
            and not text[index + 4 : index + 5].isdigit()
        ):
            continue
        out.append(char)
    return "".join(out)


def _paren_depth(text: str) -> int:
    deepest = level = 0
    for char in text:
        level += (char == "(") - (char == ")")
        deepest = max(deepest, level)
    return deepest


def _check(value: Number) -> Number:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        raise CalculatorError("the result is too large")
    if abs(value) > MAX_MAGNITUDE:
        raise CalculatorError("the result is too large")
    return value


def _evaluate(node: ast.AST, depth: int) -> Number:
    if depth > MAX_TREE_DEPTH:
        raise CalculatorError("the expression is nested too deeply")
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, depth + 1)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise CalculatorError("only numbers can be calculated")
        return _check(node.value)
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check(_UNARY[type(node.op)](_evaluate(node.operand, depth + 1)))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate(node.left, depth + 1)
        right = _evaluate(node.right, depth + 1)
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT:
                raise CalculatorError(f"exponents larger than {MAX_EXPONENT} are not allowed")
            if left == 0 and right < 0:
                raise CalculatorError("zero cannot be raised to a negative power")
            if left < 0 and isinstance(right, float) and not right.is_integer():
                raise CalculatorError("a negative number has no real fractional power")
            # estimate the size before computing: |left| ** right must stay under MAX_MAGNITUDE
            if abs(left) > 1 and right > 0 and right * math.log10(abs(left)) > math.log10(MAX_MAGNITUDE):
                raise CalculatorError("the result is too large")
        if isinstance(node.op, ast.Div | ast.FloorDiv | ast.Mod) and right == 0:
            raise CalculatorError("you cannot divide by zero")
        function = _BINARY[type(node.op)][0]
        try:
            return _check(function(left, right))
        except OverflowError:
            raise CalculatorError("the result is too large") from None
    raise CalculatorError(f"{_describe(node)} is not allowed; only numbers and + - * / // % ** and parentheses are")


def _describe(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return f"the name {node.id!r}"
    if isinstance(node, ast.Call):
        return "calling a function"
    if isinstance(node, ast.Attribute):
        return "attribute access"
    if isinstance(node, ast.Subscript):
        return "indexing"
    if isinstance(node, ast.Compare):
        return "comparison"
    if isinstance(node, ast.BoolOp):
        return "and/or"
    if isinstance(node, ast.BinOp):
        return f"the operator {type(node.op).__name__}"
    if isinstance(node, ast.UnaryOp):
        return f"the operator {type(node.op).__name__}"
    return f"{type(node).__name__}"


def evaluate(expression: str) -> Number:
    """The value of an arithmetic ``expression`` such as ``"12 * (3 + 4) / 2"``.

    Raises ``CalculatorError`` with a plain reason for anything that is not arithmetic on numbers,
    for division by zero and for expressions over the limits.
    """
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculatorError(f"the expression is longer than {MAX_EXPRESSION_CHARS} characters")
    text = _strip_thousands(_normalise(expression))
    if not text:
        raise CalculatorError("the expression is empty")
    if _paren_depth(text) > MAX_DEPTH:
        raise CalculatorError(f"the expression is nested more than {MAX_DEPTH} levels deep")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculatorError("that is not an arithmetic expression") from None
    return _evaluate(tree, 0)


def format_number(value: Number) -> str:
    """A number as it should be read and spoken: integers without ``.0``, at most 10 significant
    digits, no exponent notation for everyday sizes."""
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) >= 1e15 or abs(value) < 1e-6:
            return f"{value:.6g}"
        text = f"{value:.10g}"
        return text
    return str(value)


def spoken_expression(expression: str) -> str:
    """``"12 * 7"`` as words for the answer, e.g. ``"12 times 7"`` (falls back to the text)."""
    try:
        tree = ast.parse(_strip_thousands(_normalise(expression)), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        return expression
    return _words(tree.body)


def _words(node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return format_number(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return f"minus {_words(node.operand)}"
    if isinstance(node, ast.UnaryOp):
        return _words(node.operand)
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mult)
        and isinstance(node.left, ast.BinOp)
        and isinstance(node.left.op, ast.Div)
        and isinstance(node.left.right, ast.Constant)
        and node.left.right.value == 100
    ):
        return f"{_words(node.left.left)} percent of {_words(node.right)}"
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value in (2, 3):
            return f"{_words(node.left)} {'squared' if node.right.value == 2 else 'cubed'}"
        return f"{_words(node.left)} {_BINARY[type(node.op)][1]} {_words(node.right)}"
    return ast.unparse(node)


async def _calculate(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    expression = str(arguments["expression"])
    value = evaluate(expression)
    answer = format_number(value)
    clean = _strip_thousands(_normalise(expression))
    return ToolResult.success(
        f"{clean} = {answer}",
        spoken=f"{spoken_expression(expression)} is {answer}.",
        expression=clean,
        value=value,
        answer=answer,
    )


CALCULATOR = FunctionTool(
    name="calculator",
    description=(
        "Evaluate an arithmetic expression exactly. Use it for any arithmetic instead of calculating in your head. "
        "Supports numbers, + - * / // % ** and parentheses, e.g. '12 * 7' or '(3 + 4) ** 2 / 5'."
    ),
    parameters=object_schema(
        {"expression": {"type": "string", "description": "The expression, e.g. '12 * 7'."}}, required=["expression"]
    ),
    summary="do arithmetic",
    function=_calculate,
    read_only=True,
)
