"""The intent layer answers the sentences it knows and sends everything else to the LLM.

Phrasings are written as a speech recogniser writes them (capitals, punctuation, digits or words).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from voicebot.tools.base import ToolContext, ToolRegistry
from voicebot.tools.builtins import add_builtin_tools
from voicebot.tools.intents import IntentLayer
from voicebot.tools.spoken import parse_duration, spoken_arithmetic, words_to_number
from voicebot.tools.timers import ManualClock, TimerBoard

NOON = datetime(2026, 11, 27, 14, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def layer() -> IntentLayer:
    return IntentLayer(add_builtin_tools(ToolRegistry()))


def context() -> ToolContext:
    return ToolContext(time_zone="Europe/Paris", clock=lambda: NOON, timers=TimerBoard(clock=ManualClock()))


MATCHES: list[tuple[str, str, dict[str, Any]]] = [
    # time
    ("What time is it?", "GetTime", {}),
    ("what time is it", "GetTime", {}),
    ("What time is it now?", "GetTime", {}),
    ("What's the time?", "GetTime", {}),
    ("What is the time, please?", "GetTime", {}),
    ("What is the current time?", "GetTime", {}),
    ("Do you know what time it is?", "GetTime", {}),
    ("Can you tell me the time?", "GetTime", {}),
    ("Could you please tell me what time it is?", "GetTime", {}),
    ("Hey, what time is it right now?", "GetTime", {}),
    ("Do you have the time?", "GetTime", {}),
    ("Time?", "GetTime", {}),
    # date
    ("What's the date today?", "GetDate", {}),
    ("What is today's date?", "GetDate", {}),
    ("What day is it?", "GetDate", {}),
    ("What day is it today?", "GetDate", {}),
    ("What day of the week is it?", "GetDate", {}),
    ("What month is it?", "GetDate", {}),
    ("What year is it?", "GetDate", {}),
    ("What's the day today?", "GetDate", {}),
    # arithmetic
    ("What is twelve times seven?", "Calculate", {"expression": "12 * 7"}),
    ("What's 12 x 7?", "Calculate", {"expression": "12 * 7"}),
    ("What's 12x7?", "Calculate", {"expression": "12 * 7"}),
    ("What is 12 × 7?", "Calculate", {"expression": "12 * 7"}),
    ("How much is 3 plus 4?", "Calculate", {"expression": "3 + 4"}),
    ("How much is three plus four?", "Calculate", {"expression": "3 + 4"}),
    ("What is 1,000 divided by 8?", "Calculate", {"expression": "1000 / 8"}),
    ("What is one hundred and five minus twenty-six?", "Calculate", {"expression": "105 - 26"}),
    ("What's two thousand three hundred times four?", "Calculate", {"expression": "2300 * 4"}),
    ("What is two to the power of ten?", "Calculate", {"expression": "2 ** 10"}),
    ("What is nine squared?", "Calculate", {"expression": "9 ** 2"}),
    ("What is 3.5 times 2?", "Calculate", {"expression": "3.5 * 2"}),
    ("What's 15 percent of 80?", "Calculate", {"expression": "15 / 100 * 80"}),
    ("What is 3 times 4 plus 2?", "Calculate", {"expression": "3 * 4 + 2"}),
    ("What is 2 + 2?", "Calculate", {"expression": "2 + 2"}),
    ("Whats 9 divided by 3", "Calculate", {"expression": "9 / 3"}),
    ("Calculate 17 multiplied by 3.", "Calculate", {"expression": "17 * 3"}),
    ("What does 6 times 7 equal?", "Calculate", {"expression": "6 * 7"}),
    ("12 times 7?", "Calculate", {"expression": "12 * 7"}),
    ("Add 3 and 4.", "Calculate", {"expression": "3 + 4"}),
    ("Subtract five from twelve.", "Calculate", {"expression": "12 - 5"}),
    ("Multiply 6 by 9.", "Calculate", {"expression": "6 * 9"}),
    ("Divide 100 by 4.", "Calculate", {"expression": "100 / 4"}),
    # calendar facts
    ("How many days are in a leap year?", "CalendarFact", {"unit": "days", "period": "leap year"}),
    ("How many days are there in a leap year?", "CalendarFact", {"unit": "days", "period": "leap year"}),
    ("How many days in a week?", "CalendarFact", {"unit": "days", "period": "week"}),
    ("How many days are there in a week?", "CalendarFact", {"unit": "days", "period": "week"}),
    ("How many hours are in a day?", "CalendarFact", {"unit": "hours", "period": "day"}),
    ("How many days does February have?", "CalendarFact", {"unit": "days", "period": "february"}),
    ("How many weeks are in a year?", "CalendarFact", {"unit": "weeks", "period": "year"}),
    ("How many seconds are in a minute?", "CalendarFact", {"unit": "seconds", "period": "minute"}),
    # timers
    ("Set a timer for five minutes.", "SetTimer", {"duration_s": 300.0}),
    ("Set a timer for 5 minutes.", "SetTimer", {"duration_s": 300.0}),
    ("Start a 30 second timer.", "SetTimer", {"duration_s": 30.0}),
    ("Start a 30-second timer.", "SetTimer", {"duration_s": 30.0}),
    ("Set a 10-minute timer.", "SetTimer", {"duration_s": 600.0}),
    ("Can you set a timer for an hour and a half?", "SetTimer", {"duration_s": 5400.0}),
    ("Set a timer for 1 hour and 15 minutes, please.", "SetTimer", {"duration_s": 4500.0}),
    ("Set a timer for two and a half minutes.", "SetTimer", {"duration_s": 150.0}),
    ("Timer for 90 seconds.", "SetTimer", {"duration_s": 90.0}),
    ("Set timer 5 minutes.", "SetTimer", {"duration_s": 300.0}),
    ("Timer, 2 minutes.", "SetTimer", {"duration_s": 120.0}),
    ("5 minute timer.", "SetTimer", {"duration_s": 300.0}),
    ("Set a pasta timer for 10 minutes.", "SetTimer", {"duration_s": 600.0, "label": "pasta"}),
    ("Set a timer for ten minutes called eggs.", "SetTimer", {"duration_s": 600.0, "label": "eggs"}),
    ("Remind me in twenty minutes.", "SetTimer", {"duration_s": 1200.0}),
    ("How long is left?", "TimerStatus", {}),
    ("How much time is left on my timer?", "TimerStatus", {}),
    ("How much time is left on the pasta timer?", "TimerStatus", {"label": "pasta"}),
    ("How long until the timer goes off?", "TimerStatus", {}),
    ("What timers do I have?", "TimerStatus", {}),
    ("Is my timer still running?", "TimerStatus", {}),
    ("Cancel the timer.", "CancelTimer", {}),
    ("Stop the timer!", "CancelTimer", {}),
    ("Cancel the pasta timer.", "CancelTimer", {"label": "pasta"}),
    ("Cancel the five minute timer.", "CancelTimer", {"label": "5 minute"}),
    ("Cancel all timers.", "CancelTimer", {"all": True}),
    ("Delete all of my timers.", "CancelTimer", {"all": True}),
    # what can you do
    ("What can you do?", "WhatCanYouDo", {}),
    ("What else can you do?", "WhatCanYouDo", {}),
    ("What are your skills?", "WhatCanYouDo", {}),
    ("How can you help me?", "WhatCanYouDo", {}),
    ("Help!", "WhatCanYouDo", {}),
]

NEAR_MISSES = [
    "What is the time of the meeting tomorrow about?",
    "Tell me about the history of timers.",
    "What is love?",
    "What time does the store close?",
    "What time is it in Tokyo?",
    "What time zone is Paris in?",
    "How long is the Nile?",
    "How long does it take to boil an egg?",
    "Set the table for five people.",
    "What is a leap year?",
    "Why do we have leap years?",
    "When is the next leap year?",
    "What is one?",
    "What is the meaning of life?",
    "What is seven?",
    "What can you do about climate change?",
    "Remind me in ten minutes to call mom.",
    "What's the date of the next full moon?",
    "What day was the moon landing?",
    "Who won the world cup in 2018?",
    "How many people live in Paris?",
    "How many days until Christmas?",
    "What is the capital of France?",
    "Time flies like an arrow.",
    "Help me write a poem.",
    "What's the time complexity of quicksort?",
    "Set a timer for the oven.",
    "Cancel my subscription.",
    "What is two plus?",
    "Tell me a joke about numbers like seven and twelve.",
    "What is the square root of 16?",
    "Set an alarm for 7 AM.",
    "What time is it? Also, tell me a joke.",
    "What day is tomorrow?",
    "How many days until the weekend?",
    "Stop.",
    "",
    "   ",
]


@pytest.mark.parametrize(("text", "intent", "arguments"), MATCHES)
def test_matches(layer: IntentLayer, text: str, intent: str, arguments: dict[str, Any]) -> None:
    match = layer.match(text)
    assert match is not None, f"{text!r} did not match"
    assert (match.intent, dict(match.arguments)) == (intent, arguments)
    assert match.text == text


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_misses_go_to_the_llm(layer: IntentLayer, text: str) -> None:
    assert layer.match(text) is None


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("What time is it?", "It's 3:05 PM."),
        ("What's the date today?", "Today is Friday, November 27, 2026."),
        ("What month is it?", "It's November."),
        ("What year is it?", "It's 2026."),
        ("What is twelve times seven?", "12 times 7 is 84."),
        ("How much is 3 plus 4?", "3 plus 4 is 7."),
        ("What is 10 divided by 4?", "10 divided by 4 is 2.5."),
        ("What is 5 divided by 0?", "Sorry, I could not work that out: you cannot divide by zero."),
        ("How many days are in a leap year?", "There are 366 days in a leap year."),
        ("How many days are in a week?", "There are 7 days in a week."),
        ("Set a timer for five minutes.", "Timer set for 5 minutes."),
        ("Set a timer for 30 hours.", "Sorry, I could not set the timer: timers can run for at most 24 hours."),
        ("How long is left?", "No timer is running."),
        ("Cancel the timer.", "Sorry, I could not cancel it: no timer is running."),
    ],
)
async def test_spoken_answers(layer: IntentLayer, text: str, spoken: str) -> None:
    match = layer.match(text)
    assert match is not None
    _, said = await layer.answer(match, context())
    assert said == spoken


async def test_a_timer_conversation(layer: IntentLayer) -> None:
    clock = ManualClock()
    ctx = ToolContext(timers=TimerBoard(clock=clock))

    async def say(text: str) -> str:
        match = layer.match(text)
        assert match is not None, text
        return (await layer.answer(match, ctx))[1]

    assert await say("Set a timer for five minutes.") == "Timer set for 5 minutes."
    clock.advance(90)
    assert (
        await say("How much time is left on my timer?")
        == "You have 3 minutes and 30 seconds left on your 5 minute timer."
    )
    assert await say("Set a pasta timer for 10 minutes.") == "Pasta timer set for 10 minutes."
    assert await say("Cancel the five minute timer.") == "Cancelled your 5 minute timer."
    assert await say("How long is left on the pasta timer?") == "You have 10 minutes left on your pasta timer."
    assert await say("Cancel all timers.") == "Cancelled your pasta timer."


def test_only_enabled_tools_match() -> None:
    layer = IntentLayer(add_builtin_tools(ToolRegistry(), ["get_time"]))
    assert layer.intents == ["GetTime"]
    assert layer.match("What time is it?") is not None
    assert layer.match("What is twelve times seven?") is None
    assert layer.match("Set a timer for five minutes.") is None


@pytest.mark.parametrize(
    ("words", "number"),
    [
        ("zero", 0),
        ("seven", 7),
        ("twelve", 12),
        ("twenty-one", 21),
        ("ninety nine", 99),
        ("a hundred", 100),
        ("one hundred and five", 105),
        ("three hundred forty two", 342),
        ("a thousand", 1000),
        ("two thousand and twenty six", 2026),
        ("twelve hundred", 1200),
        ("four thousand five hundred and sixty seven", 4567),
        ("one million two hundred thousand", 1_200_000),
        ("1,000", 1000),
        ("3.5", 3.5),
        ("three point one four", 3.14),
        ("5 thousand", 5000),
        ("seven seven", None),
        ("twenty twelve", None),
        ("hundred", None),
        ("banana", None),
    ],
)
def test_words_to_number(words: str, number: float | None) -> None:
    assert words_to_number(words) == number


@pytest.mark.parametrize(
    ("words", "seconds"),
    [
        ("five minutes", 300),
        ("a minute", 60),
        ("an hour", 3600),
        ("half an hour", 1800),
        ("a quarter of an hour", 900),
        ("an hour and a half", 5400),
        ("a minute and a half", 90),
        ("one and a half hours", 5400),
        ("1.5 hours", 5400),
        ("2 hours 15 minutes", 8100),
        ("1 minute and 30 seconds", 90),
        ("90 secs", 90),
        ("5 min", 300),
        ("five", None),
        ("the oven", None),
        ("minutes", None),
        ("ten minutes to call mom", None),
    ],
)
def test_parse_duration(words: str, seconds: float | None) -> None:
    assert parse_duration(words) == seconds


@pytest.mark.parametrize(
    ("words", "expression"),
    [
        ("twelve times seven", "12 * 7"),
        ("minus three times four", "- 3 * 4"),
        ("(3 + 4) * 2", "(3 + 4) * 2"),
        ("ten over four", "10 / 4"),
        ("7 mod 3", "7 % 3"),
        ("love", None),
        ("seven", None),
        ("three and four", None),
        ("two plus", None),
    ],
)
def test_spoken_arithmetic(words: str, expression: str | None) -> None:
    assert spoken_arithmetic(words) == expression
