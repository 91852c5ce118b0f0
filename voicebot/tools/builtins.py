"""The tools voicebot ships with: the time and date, a calculator, calendar facts, timers, and
"what can you do".

They are the answers a small model cannot know (the clock) or gets wrong (arithmetic), and the ones
every voice assistant is expected to have. Each is a ``FunctionTool``; ``builtin_tools`` picks the
enabled ones in a stable order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from voicebot.tools.base import FunctionTool, Tool, ToolContext, ToolError, ToolRegistry, ToolResult, object_schema
from voicebot.tools.calculator import CALCULATOR, format_number
from voicebot.tools.timers import Timer, TimerBoard, TimerError, format_duration

# ---------------------------------------------------------------- time and date


def zone_name(context: ToolContext, now: datetime) -> str:
    """The zone's IANA name when known, else its abbreviation ("CET", "UTC")."""
    key = getattr(context.zone, "key", None)
    return str(key) if key else (now.tzname() or "UTC")


def spoken_time(now: datetime) -> str:
    """``3:05 PM`` (what TTS reads well)."""
    return f"{now.hour % 12 or 12}:{now.minute:02d} {'AM' if now.hour < 12 else 'PM'}"


def spoken_date(now: datetime) -> str:
    """``Friday, November 27, 2026``."""
    return f"{now:%A}, {now:%B} {now.day}, {now.year}"


async def _get_time(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    now = context.now()
    zone = zone_name(context, now)
    said = spoken_time(now)
    return ToolResult.success(
        f"The current time is {now:%H:%M} ({said}) on {spoken_date(now)}, time zone {zone} (UTC{now:%z}).",
        spoken=f"It's {said}.",
        iso=now.isoformat(timespec="seconds"),
        time=said,
        time_24h=f"{now:%H:%M}",
        hour=now.hour,
        minute=now.minute,
        time_zone=zone,
    )


async def _get_date(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    now = context.now()
    said = spoken_date(now)
    return ToolResult.success(
        f"Today is {said} ({now:%Y-%m-%d}), time zone {zone_name(context, now)}.",
        spoken=f"Today is {said}.",
        iso=now.date().isoformat(),
        date=said,
        weekday=f"{now:%A}",
        month=f"{now:%B}",
        year=now.year,
        time_zone=zone_name(context, now),
    )


def clock_prompt(context: ToolContext) -> str:
    """A sentence for the system prompt that gives a model without tools the user's date and time
    (the embedded model otherwise invents them): "It is now 3:05 PM on Friday, November 27, 2026 (time
    zone Europe/Paris)." Build it at the start of each turn."""
    now = context.now()
    return f"It is now {spoken_time(now)} on {spoken_date(now)} (time zone {zone_name(context, now)})."


GET_TIME = FunctionTool(
    name="get_time",
    description="Get the current local time of the user (their time zone when known). Use it whenever "
    "the user asks what time it is; never guess the time.",
    parameters=object_schema(),
    summary="tell you the time",
    function=_get_time,
    read_only=True,
)

GET_DATE = FunctionTool(
    name="get_date",
    description="Get today's date and day of the week for the user. Use it whenever the user asks the "
    "date, the day, the month or the year.",
    parameters=object_schema(),
    summary="tell you the date",
    function=_get_date,
    read_only=True,
)

# ---------------------------------------------------------------- calendar facts

_DAY = 86_400
PERIOD_SECONDS: dict[str, int] = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": _DAY,
    "week": 7 * _DAY,
    "fortnight": 14 * _DAY,
    "year": 365 * _DAY,
    "common year": 365 * _DAY,
    "leap year": 366 * _DAY,
}
"""Fixed lengths of the periods the calendar tool knows (a "year" is a common year)."""

MONTH_DAYS: dict[str, int] = {
    "january": 31,
    "february": 28,
    "march": 31,
    "april": 30,
    "may": 31,
    "june": 30,
    "july": 31,
    "august": 31,
    "september": 30,
    "october": 31,
    "november": 30,
    "december": 31,
}

UNITS = ("seconds", "minutes", "hours", "days", "weeks", "months")


def _singular(word: str) -> str:
    """``"Leap Years"`` → ``"leap year"``, ``"a week"`` → ``"week"``."""
    word = " ".join(word.lower().split())
    if word.startswith(("a ", "an ", "the ", "one ")):
        word = word.split(" ", 1)[1]
    known = set(PERIOD_SECONDS) | set(MONTH_DAYS) | {"month"}
    if word not in known and word.endswith("s") and word[:-1] in known:
        return word[:-1]
    return word


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" or noun.startswith("hour") else "a"


def _breakdown(seconds: int) -> str:
    """``86400`` → ``"1 day"``, ``90061`` → ``"1 day, 1 hour, 1 minute and 1 second"``."""
    parts = []
    for name in ("day", "hour", "minute", "second"):
        count, seconds = divmod(seconds, PERIOD_SECONDS[name])
        if count:
            parts.append(f"{count} {name}" + ("" if count == 1 else "s"))
    return join_words(parts)


def _answer_count(unit: str, period: str) -> tuple[str, str, int | float]:
    unit_one = _singular(unit)
    period_one = _singular(period)
    if period_one in MONTH_DAYS:
        if unit_one != "day":
            raise ToolError(f"I only know how many days are in {period_one.title()}")
        days = MONTH_DAYS[period_one]
        name = period_one.title()
        if period_one == "february":
            return "February has 28 days, or 29 in a leap year.", "28 days (29 in a leap year)", 28
        return f"{name} has {days} days.", f"{days} days", days
    if period_one == "month":
        if unit_one == "day":
            return "A month has 28 to 31 days, depending on the month.", "28 to 31 days", 30.44
        if unit_one == "week":
            return "A month has about 4 and a third weeks.", "about 4.35 weeks", 4.35
        raise ToolError("months have different lengths, so I can only give days or weeks")
    if unit_one == "month":
        if period_one in ("year", "leap year", "common year"):
            return f"There are 12 months in a {period_one}.", "12 months", 12
        raise ToolError("I only know how many months are in a year")
    if unit_one not in PERIOD_SECONDS or period_one not in PERIOD_SECONDS:
        unknown = unit_one if unit_one not in PERIOD_SECONDS else period_one
        raise ToolError(f"I do not know how long a {unknown} is")
    whole, rest = divmod(PERIOD_SECONDS[period_one], PERIOD_SECONDS[unit_one])
    if whole == 0:
        raise ToolError(f"{_article(period_one)} {period_one} is shorter than {_article(unit_one)} {unit_one}")
    amount = f"{whole:,} {unit_one}" + ("" if whole == 1 else "s")
    article = _article(period_one)
    if rest:
        extra = _breakdown(rest)
        return f"There are {amount} and {extra} in {article} {period_one}.", f"{amount} and {extra}", whole
    return f"There are {amount} in {article} {period_one}.", amount, whole


async def _calendar_facts(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    unit = str(arguments["unit"])
    period = str(arguments["period"])
    sentence, amount, value = _answer_count(unit, period)
    return ToolResult.success(sentence, unit=unit, period=period, amount=amount, value=value)


CALENDAR_FACTS = FunctionTool(
    name="calendar_facts",
    description="How many of one unit of time are in a period: days in a leap year, hours in a week, "
    "days in February, seconds in a day, months in a year.",
    parameters=object_schema(
        {
            "unit": {"type": "string", "enum": list(UNITS), "description": "What to count."},
            "period": {
                "type": "string",
                "description": "The period: minute, hour, day, week, fortnight, month, year, leap year, "
                "or a month's name.",
            },
        },
        required=["unit", "period"],
    ),
    summary="answer calendar questions",
    function=_calendar_facts,
    read_only=True,
)

# ---------------------------------------------------------------- timers


def _board(context: ToolContext) -> TimerBoard:
    if context.timers is None:
        raise ToolError("timers are not available here")
    return context.timers


def timer_done_announcement(timer: Timer) -> str:
    """What the assistant says, unprompted, when ``timer`` ends."""
    if timer.label:
        return f"Your {timer.label} timer is done."
    return f"Your {format_duration(timer.duration_s, compact=True)} timer is done."


async def _set_timer(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    board = _board(context)
    label = arguments.get("label") or None
    try:
        timer = board.set(float(arguments["duration_s"]), label=str(label) if label else None)
    except TimerError as exc:
        raise ToolError(str(exc)) from None
    length = format_duration(timer.duration_s)
    name = f"{timer.label.capitalize()} timer" if timer.label else "Timer"
    return ToolResult.success(
        f"{name} {timer.id} set for {length}.",
        spoken=f"{name} set for {length}.",
        timer=timer.to_dict(board.now()),
        duration=length,
    )


async def _timer_status(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    board = _board(context)
    label = arguments.get("label") or None
    now = board.now()
    timers = board.find(label=str(label) if label else None)
    listed = [timer.to_dict(now) for timer in timers]
    if not timers:
        sentence = "There is no timer like that." if label else "No timer is running."
        return ToolResult.success(sentence, timers=listed, count=0)
    if len(timers) == 1:
        timer = timers[0]
        left = format_duration(timer.remaining_s(now))
        yours = timer.describe().replace("the ", "your ", 1)
        return ToolResult.success(
            f"{left} left on {timer.describe()}.",
            spoken=f"You have {left} left on {yours}.",
            timers=listed,
            count=1,
            remaining=left,
        )
    parts = [f"{timer.describe()} with {format_duration(timer.remaining_s(now))} left" for timer in timers]
    sentence = f"You have {len(timers)} timers: " + "; ".join(parts) + "."
    return ToolResult.success(sentence, timers=listed, count=len(timers))


async def _cancel_timer(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    board = _board(context)
    label = arguments.get("label") or None
    every = bool(arguments.get("all", False))
    try:
        cancelled = board.cancel(label=str(label) if label else None, every=every)
    except TimerError as exc:
        raise ToolError(str(exc)) from None
    if len(cancelled) == 1:
        sentence = f"Cancelled {cancelled[0].describe().replace('the ', 'your ', 1)}."
    else:
        sentence = f"Cancelled {len(cancelled)} timers."
    now = board.now()
    return ToolResult.success(sentence, cancelled=[timer.to_dict(now) for timer in cancelled], count=len(cancelled))


SET_TIMER = FunctionTool(
    name="set_timer",
    description="Start a countdown timer. The assistant announces by itself when it ends.",
    parameters=object_schema(
        {
            "duration_s": {"type": "number", "description": "Length of the timer in seconds."},
            "label": {"type": "string", "description": "Optional name, e.g. 'pasta'."},
        },
        required=["duration_s"],
    ),
    summary="set timers",
    function=_set_timer,
)

TIMER_STATUS = FunctionTool(
    name="timer_status",
    description="How much time is left on the running timers (or on the one with this label).",
    parameters=object_schema({"label": {"type": "string", "description": "Only the timer with this name."}}),
    summary="check timers",
    function=_timer_status,
    read_only=True,
)

CANCEL_TIMER = FunctionTool(
    name="cancel_timer",
    description="Cancel a running timer: the only one, the one with this label, or all of them.",
    parameters=object_schema(
        {
            "label": {"type": "string", "description": "Cancel the timer with this name."},
            "all": {"type": "boolean", "description": "Cancel every running timer."},
        }
    ),
    summary="cancel timers",
    function=_cancel_timer,
)

# ---------------------------------------------------------------- what can you do


def join_words(items: list[str]) -> str:
    """``["a", "b", "c"]`` → ``"a, b and c"``."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def merge_summaries(summaries: list[str]) -> list[str]:
    """Join neighbours that share words: "tell you the time" + "tell you the date" → "tell you the time
    and the date"; "set timers" + "check timers" + "cancel timers" → "set, check and cancel timers"."""
    groups: list[list[list[str]]] = []
    for summary in summaries:
        words = summary.split()
        last = groups[-1] if groups else None
        same_object = len(words) == 2 and all(len(item) == 2 and item[1] == words[1] for item in last or ())
        same_verb = len(words) > 3 and all(len(item) > 3 and item[:2] == words[:2] for item in last or ())
        if last and (same_object or same_verb):
            last.append(words)
        else:
            groups.append([words])
    merged: list[str] = []
    for group in groups:
        if len(group) == 1:
            merged.append(" ".join(group[0]))
        elif len(group[0]) == 2:
            merged.append(f"{join_words([item[0] for item in group])} {group[0][1]}")
        else:
            head = " ".join(group[0][:2])
            merged.append(f"{head} {join_words([' '.join(item[2:]) for item in group])}")
    return merged


class WhatCanYouDo:
    """The "what can you do?" tool: lists, in words, the tools enabled in its registry."""

    name = "what_can_you_do"
    description = "List what the assistant can do with its tools. Use it when the user asks what you can do."
    parameters: Mapping[str, Any] = object_schema()
    summary = "tell you what I can do"
    read_only = True

    def __init__(self, registry: ToolRegistry) -> None:
        self.registry = registry

    async def run(self, arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        """Describe the other registered tools."""
        skills: list[str] = []
        for tool in self.registry.tools:
            if tool.name != self.name and tool.summary not in skills:
                skills.append(tool.summary)
        skills = merge_summaries(skills)
        if not skills:
            sentence = "I can answer questions and chat with you."
        elif len(skills) == 1:
            sentence = f"I can {skills[0]}. Otherwise, just ask me anything."
        else:
            sentence = f"I can {', '.join(skills[:-1])}, and {skills[-1]}. Otherwise, just ask me anything."
        return ToolResult.success(sentence, skills=skills, tools=[tool.name for tool in self.registry.tools])


# ---------------------------------------------------------------- the set

BUILTIN_NAMES: tuple[str, ...] = (
    "get_time",
    "get_date",
    "calculator",
    "calendar_facts",
    "set_timer",
    "timer_status",
    "cancel_timer",
    "what_can_you_do",
)
"""Every built-in tool, in the order they are offered to models."""

_STATIC: dict[str, Tool] = {
    tool.name: tool for tool in (GET_TIME, GET_DATE, CALCULATOR, CALENDAR_FACTS, SET_TIMER, TIMER_STATUS, CANCEL_TIMER)
}


def add_builtin_tools(registry: ToolRegistry, enabled: Iterable[str] = BUILTIN_NAMES) -> ToolRegistry:
    """Add the ``enabled`` built-in tools to ``registry`` (in ``BUILTIN_NAMES`` order) and return it."""
    wanted = set(enabled)
    unknown = wanted - set(BUILTIN_NAMES)
    if unknown:
        raise ValueError(f"unknown built-in tools: {', '.join(sorted(unknown))}; known: {', '.join(BUILTIN_NAMES)}")
    for name in BUILTIN_NAMES:
        if name not in wanted:
            continue
        registry.add(WhatCanYouDo(registry) if name == "what_can_you_do" else _STATIC[name])
    return registry


__all__ = [
    "BUILTIN_NAMES",
    "CALCULATOR",
    "CALENDAR_FACTS",
    "CANCEL_TIMER",
    "GET_DATE",
    "GET_TIME",
    "SET_TIMER",
    "TIMER_STATUS",
    "WhatCanYouDo",
    "add_builtin_tools",
    "clock_prompt",
    "format_number",
    "timer_done_announcement",
]
