"""The intent layer: answer known sentences with a tool before the LLM sees them.

The embedded 135M model cannot call tools and invents the time and wrong sums, so for it the turn asks
``IntentLayer.match(transcript)`` first. A match names a tool and its arguments; the turn calls it
through the registry (``IntentLayer.answer``) and speaks a templated sentence. Anything that is not a
confident match returns None and goes to the LLM as before, so templates err on the side of missing:
they must match the whole utterance, and wildcard captures must parse (a sum as numbers and operators,
a timer as a length of time).

Templates live in ``voicebot.tools.sentences`` (hassil YAML); only intents whose tool is enabled in
the registry are matched.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hassil import Intents, RecognizeResult, recognize_all

from voicebot.tools.base import ToolContext, ToolRegistry, ToolResult
from voicebot.tools.sentences import SENTENCES_YAML
from voicebot.tools.spoken import parse_duration, spoken_arithmetic, tokenize, words_to_number
from voicebot.tools.timers import format_duration

#: Which tool each intent calls.
INTENT_TOOLS: dict[str, str] = {
    "GetTime": "get_time",
    "GetDate": "get_date",
    "Calculate": "calculator",
    "CalendarFact": "calendar_facts",
    "SetTimer": "set_timer",
    "TimerStatus": "timer_status",
    "CancelTimer": "cancel_timer",
    "WhatCanYouDo": "what_can_you_do",
}

#: What the assistant says when the intent's tool fails; ``{reason}`` is the tool's plain reason.
FAILURE_TEMPLATES: dict[str, str] = {
    "GetTime": "Sorry, I could not get the time: {reason}.",
    "GetDate": "Sorry, I could not get the date: {reason}.",
    "Calculate": "Sorry, I could not work that out: {reason}.",
    "CalendarFact": "Sorry, {reason}.",
    "SetTimer": "Sorry, I could not set the timer: {reason}.",
    "TimerStatus": "Sorry, I could not check the timers: {reason}.",
    "CancelTimer": "Sorry, I could not cancel it: {reason}.",
    "WhatCanYouDo": "I can answer questions and chat with you.",
}

#: Words that are not a timer's name ("set a timer", "cancel all timers").
_NOT_LABELS = {"a", "an", "the", "my", "this", "that", "all", "every", "of", "me", "one", "new", "another", "any"}


@dataclass(frozen=True)
class IntentMatch:
    """A sentence the intent layer recognised."""

    intent: str
    """Intent name, e.g. ``GetTime``."""
    tool: str
    """The tool to call."""
    arguments: Mapping[str, Any]
    """The tool's arguments."""
    text: str
    """The utterance as heard."""
    slots: Mapping[str, Any] = field(default_factory=dict)
    """What hassil captured (for logs and debugging)."""

    def spoken_answer(self, result: ToolResult) -> str:
        """The sentence to speak for ``result`` of this match's tool."""
        if not result.ok:
            reason = (result.error or "something went wrong").rstrip(".")
            return FAILURE_TEMPLATES.get(self.intent, "Sorry, I could not do that: {reason}.").format(reason=reason)
        if self.intent == "GetDate":
            part = self.slots.get("part", "date")
            if part == "month" and "month" in result.data:
                return f"It's {result.data['month']}."
            if part == "year" and "year" in result.data:
                return f"It's {result.data['year']}."
        return result.spoken


Converter = Callable[[RecognizeResult], "dict[str, Any] | None"]


def _values(result: RecognizeResult) -> dict[str, Any]:
    return {name: entity.value for name, entity in result.entities.items()}


def _label(text: Any) -> str | None:
    """A timer name from a wildcard capture, or None when the words are not a name."""
    words = [word for word in tokenize(str(text)) if word not in ("please",)]
    while words and words[0] in _NOT_LABELS:
        words.pop(0)
    if not words or any(word in _NOT_LABELS | {"timer", "timers"} for word in words) or len(words) > 3:
        return None
    duration = parse_duration(" ".join(words))
    if duration is not None:
        return format_duration(duration, compact=True)  # "five minute" names the 5 minute timer
    return " ".join(words)


def _get_time(result: RecognizeResult) -> dict[str, Any] | None:
    return {}


def _calculate(result: RecognizeResult) -> dict[str, Any] | None:
    slots = _values(result)
    operation = slots.get("operation")
    if operation is None:
        expression = spoken_arithmetic(str(slots.get("expression", "")))
        return None if expression is None else {"expression": expression}
    a = words_to_number(str(slots.get("a", "")))
    b = words_to_number(str(slots.get("b", "")))
    if a is None or b is None:
        return None
    symbol = {"add": f"{a} + {b}", "subtract_from": f"{b} - {a}", "multiply": f"{a} * {b}", "divide": f"{a} / {b}"}
    return {"expression": symbol[str(operation)]}


def _calendar_fact(result: RecognizeResult) -> dict[str, Any] | None:
    slots = _values(result)
    return {"unit": str(slots["unit"]), "period": str(slots["period"])}


def _set_timer(result: RecognizeResult) -> dict[str, Any] | None:
    slots = _values(result)
    seconds = parse_duration(str(slots.get("duration", "")))
    if seconds is None:
        return None
    arguments: dict[str, Any] = {"duration_s": seconds}
    if "label" in slots:
        label = _label(slots["label"])
        if label is None or parse_duration(label) is not None:
            return None
        arguments["label"] = label
    return arguments


def _timer_label(result: RecognizeResult) -> dict[str, Any] | None:
    slots = _values(result)
    if "label" not in slots:
        return {}
    label = _label(slots["label"])
    return None if label is None else {"label": label}


def _cancel_timer(result: RecognizeResult) -> dict[str, Any] | None:
    slots = _values(result)
    if slots.get("all") in (True, "true", "True"):
        return {"all": True}
    return _timer_label(result)


CONVERTERS: dict[str, Converter] = {
    "GetTime": _get_time,
    "GetDate": _get_time,
    "Calculate": _calculate,
    "CalendarFact": _calendar_fact,
    "SetTimer": _set_timer,
    "TimerStatus": _timer_label,
    "CancelTimer": _cancel_timer,
    "WhatCanYouDo": _get_time,
}


def _clean(text: str) -> str:
    """What hassil should see: no quotes or trailing punctuation, symbols spaced ("12x7" → "12 x 7"),
    "what's" spelled out (speech recognisers write both)."""
    text = text.strip().replace("’", "'")
    text = re.sub(r"(?<=\d)\s*([x×*/+÷^])\s*(?=[\d(-])", r" \1 ", text)
    text = re.sub(r"(?<=[A-Za-z])-(?=[A-Za-z])", " ", text)
    text = re.sub(r"(?<=\d)-(?=[A-Za-z])", " ", text)  # "5-minute"
    return text.strip(" \"'")


def _score(result: RecognizeResult) -> tuple[int, int]:
    wildcards = sum(1 for entity in result.entities.values() if entity.is_wildcard)
    return (-result.text_chunks_matched, wildcards)


class IntentLayer:
    """Matches utterances against the sentence templates of the enabled tools."""

    def __init__(self, registry: ToolRegistry, sentences_yaml: str = SENTENCES_YAML) -> None:
        self.registry = registry
        self._intents = Intents.from_yaml(io.StringIO(sentences_yaml))

    @property
    def intents(self) -> list[str]:
        """Names of the intents that can match (those whose tool is registered)."""
        return [name for name, tool in INTENT_TOOLS.items() if tool in self.registry]

    def match(self, text: str) -> IntentMatch | None:
        """The intent ``text`` asks for, with the tool's arguments, or None (ask the LLM)."""
        cleaned = _clean(text)
        if not cleaned or len(cleaned) > 200:
            return None
        enabled = set(self.intents)
        candidates: list[tuple[tuple[int, int], int, IntentMatch]] = []
        for order, result in enumerate(self._recognize(cleaned)):
            name = result.intent.name
            if name not in enabled:
                continue
            arguments = CONVERTERS[name](result)
            if arguments is None:
                continue
            slots = _values(result)
            match = IntentMatch(intent=name, tool=INTENT_TOOLS[name], arguments=arguments, text=text, slots=slots)
            candidates.append((_score(result), order, match))
        if not candidates:
            return None
        return min(candidates, key=lambda item: (item[0], item[1]))[2]

    def _recognize(self, text: str) -> Iterable[RecognizeResult]:
        return recognize_all(text, self._intents, language="en")

    async def answer(self, match: IntentMatch, context: ToolContext) -> tuple[ToolResult, str]:
        """Call the match's tool through the registry (so limits and timeouts apply) and return the
        result with the sentence to speak."""
        result = await self.registry.call(match.tool, dict(match.arguments), context)
        return result, match.spoken_answer(result)
