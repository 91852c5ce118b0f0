"""The registry exports tools for each API and calls them without ever raising; the built-in time,
date, calendar and "what can you do" tools answer correctly."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest

from voicebot.tools.base import (
    FunctionTool,
    ToolContext,
    ToolError,
    ToolRegistry,
    ToolResult,
    check_arguments,
    object_schema,
    result_from_dict,
)
from voicebot.tools.builtins import BUILTIN_NAMES, add_builtin_tools, clock_prompt

FIXED = datetime(2026, 2, 28, 23, 30, 5, tzinfo=UTC)


def fixed_clock() -> datetime:
    return FIXED


def make_tool(name: str, function: Any, parameters: Mapping[str, Any] | None = None) -> FunctionTool:
    return FunctionTool(
        name=name,
        description=f"The {name} tool.",
        parameters=parameters or object_schema(),
        summary=f"do {name}",
        function=function,
    )


async def echo(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    return ToolResult.success(f"echo {dict(arguments)}", value=arguments.get("n"))


async def crash(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    raise RuntimeError("disk on fire")


async def refuse(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
    raise ToolError("the oven is not connected")


async def wrong_type(arguments: Mapping[str, Any], context: ToolContext) -> Any:
    return "a plain string"


def test_exports_anthropic_and_openai_definitions() -> None:
    schema = object_schema({"n": {"type": "integer"}}, required=["n"])
    registry = ToolRegistry([make_tool("echo", echo, schema)])
    assert registry.anthropic_tools() == [{"name": "echo", "description": "The echo tool.", "input_schema": schema}]
    assert registry.openai_tools() == [
        {"type": "function", "function": {"name": "echo", "description": "The echo tool.", "parameters": schema}}
    ]


def test_rejects_names_the_apis_refuse_and_duplicates() -> None:
    registry = ToolRegistry([make_tool("echo", echo)])
    with pytest.raises(ValueError, match="no dots"):
        registry.add(make_tool("server.tool", echo))
    with pytest.raises(ValueError, match="already registered"):
        registry.add(make_tool("echo", echo))
    registry.remove("echo")
    assert "echo" not in registry and len(registry) == 0


@pytest.mark.parametrize(
    ("name", "arguments", "reason"),
    [
        ("nope", {}, "there is no tool named 'nope'"),
        ("echo", "{not json", "the arguments are not valid JSON (Expecting property name enclosed in double quotes)"),
        ("echo", "[1, 2]", "the arguments must be a JSON object"),
        ("echo", {}, "the argument 'n' is missing"),
        ("echo", {"n": "three"}, "the argument 'n' must be an integer"),
        ("echo", {"n": True}, "the argument 'n' must be an integer"),
        ("echo", {"n": 3, "extra": 1}, "there is no argument 'extra'"),
        ("crash", {}, "the tool failed (RuntimeError: disk on fire)"),
        ("refuse", {}, "the oven is not connected"),
        ("wrong_type", {}, "the tool returned str, not a ToolResult"),
    ],
)
async def test_call_never_raises(name: str, arguments: Any, reason: str) -> None:
    registry = ToolRegistry(
        [
            make_tool("echo", echo, object_schema({"n": {"type": "integer"}}, required=["n"])),
            make_tool("crash", crash),
            make_tool("refuse", refuse),
            make_tool("wrong_type", wrong_type),
        ]
    )
    result = await registry.call(name, arguments, ToolContext())
    assert not result.ok
    assert result.error == reason
    assert result.text == f"Error: {reason}"
    assert result.spoken


async def test_arguments_may_come_as_a_json_string() -> None:
    registry = ToolRegistry([make_tool("echo", echo, object_schema({"n": {"type": "integer"}}))])
    result = await registry.call("echo", '{"n": 3}', ToolContext())
    assert result.ok and result.data["value"] == 3
    empty = await registry.call("echo", "", ToolContext())
    assert empty.ok and empty.data["value"] is None


async def test_timeout_becomes_a_failed_result_and_cancellation_still_propagates() -> None:
    started = asyncio.Event()

    async def hang(arguments: Mapping[str, Any], context: ToolContext) -> ToolResult:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    registry = ToolRegistry([make_tool("hang", hang)], default_timeout_s=30)
    result = await registry.call("hang", {}, ToolContext(), timeout_s=0.01)
    assert not result.ok
    assert result.error == "it took longer than 0.01 seconds"
    assert result.spoken == "Sorry, that took too long."
    assert result.elapsed_ms >= 10

    # A barge-in cancels the turn: the call must not swallow that.
    started.clear()
    task = asyncio.create_task(registry.call("hang", {}, ToolContext()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_check_arguments_enums() -> None:
    schema = object_schema({"unit": {"type": "string", "enum": ["days", "hours"]}})
    assert check_arguments(schema, {"unit": "days"}) is None
    assert check_arguments(schema, {"unit": "years"}) == "the argument 'unit' must be one of days, hours"


# ---------------------------------------------------------------- built-ins


@pytest.mark.parametrize(
    ("zone", "spoken", "hour"),
    [
        ("UTC", "It's 11:30 PM.", 23),
        ("Europe/Paris", "It's 12:30 AM.", 0),
        ("America/New_York", "It's 6:30 PM.", 18),
        ("Asia/Kolkata", "It's 5:00 AM.", 5),
    ],
)
async def test_time_in_the_pages_zone(zone: str, spoken: str, hour: int) -> None:
    registry = add_builtin_tools(ToolRegistry())
    result = await registry.call("get_time", {}, ToolContext(time_zone=zone, clock=fixed_clock))
    assert result.ok
    assert result.spoken == spoken
    assert result.data["hour"] == hour
    assert result.data["time_zone"] == zone


async def test_date_changes_with_the_zone() -> None:
    registry = add_builtin_tools(ToolRegistry())
    utc = await registry.call("get_date", {}, ToolContext(time_zone="UTC", clock=fixed_clock))
    tokyo = await registry.call("get_date", {}, ToolContext(time_zone="Asia/Tokyo", clock=fixed_clock))
    assert utc.spoken == "Today is Saturday, February 28, 2026."
    assert tokyo.spoken == "Today is Sunday, March 1, 2026."
    assert tokyo.data["iso"] == "2026-03-01"


async def test_unknown_or_missing_zone_uses_the_servers() -> None:
    registry = add_builtin_tools(ToolRegistry())
    server = FIXED.astimezone()
    for zone in (None, "Mars/Olympus_Mons", "../../etc/passwd"):
        result = await registry.call("get_time", {}, ToolContext(time_zone=zone, clock=fixed_clock))
        assert result.ok
        assert result.data["hour"] == server.hour
        assert result.data["minute"] == server.minute


async def test_real_clock_is_the_default() -> None:
    registry = add_builtin_tools(ToolRegistry())
    before = datetime.now(UTC)
    result = await registry.call("get_time", {}, ToolContext(time_zone="UTC"))
    after = datetime.now(UTC)
    assert result.data["hour"] in (before.hour, after.hour)


@pytest.mark.parametrize(
    ("unit", "period", "sentence"),
    [
        ("days", "leap year", "There are 366 days in a leap year."),
        ("days", "year", "There are 365 days in a year."),
        ("days", "week", "There are 7 days in a week."),
        ("hours", "week", "There are 168 hours in a week."),
        ("seconds", "day", "There are 86,400 seconds in a day."),
        ("weeks", "year", "There are 52 weeks and 1 day in a year."),
        ("weeks", "leap year", "There are 52 weeks and 2 days in a leap year."),
        ("months", "year", "There are 12 months in a year."),
        ("days", "February", "February has 28 days, or 29 in a leap year."),
        ("days", "april", "April has 30 days."),
        ("days", "month", "A month has 28 to 31 days, depending on the month."),
        ("minutes", "hour", "There are 60 minutes in an hour."),
    ],
)
async def test_calendar_facts(unit: str, period: str, sentence: str) -> None:
    registry = add_builtin_tools(ToolRegistry())
    result = await registry.call("calendar_facts", {"unit": unit, "period": period}, ToolContext())
    assert result.ok, result.error
    assert result.spoken == sentence


async def test_calendar_facts_refuse_what_they_do_not_know() -> None:
    registry = add_builtin_tools(ToolRegistry())
    result = await registry.call("calendar_facts", {"unit": "days", "period": "decade"}, ToolContext())
    assert not result.ok and result.error == "I do not know how long a decade is"
    shorter = await registry.call("calendar_facts", {"unit": "days", "period": "hour"}, ToolContext())
    assert not shorter.ok and shorter.error == "an hour is shorter than a day"


async def test_what_can_you_do_lists_only_enabled_tools() -> None:
    everything = add_builtin_tools(ToolRegistry())
    assert everything.names == list(BUILTIN_NAMES)
    result = await everything.call("what_can_you_do", {}, ToolContext())
    assert result.spoken == (
        "I can tell you the time and the date, do arithmetic, answer calendar questions, "
        "and set, check and cancel timers. Otherwise, just ask me anything."
    )
    some = add_builtin_tools(ToolRegistry(), ["calculator", "what_can_you_do"])
    assert (await some.call("what_can_you_do", {}, ToolContext())).spoken == (
        "I can do arithmetic. Otherwise, just ask me anything."
    )
    with pytest.raises(ValueError, match="unknown built-in tools: teleport"):
        add_builtin_tools(ToolRegistry(), ["teleport"])


def test_only_the_tools_that_change_nothing_are_read_only() -> None:
    """They may run for a reply prepared while the user pauses (which is dropped if they go on)."""
    registry = add_builtin_tools(ToolRegistry())
    registry.add(make_tool("echo", echo))

    read_only = {name for name in registry.names if registry.read_only(name)}

    assert read_only == {"get_time", "get_date", "calculator", "calendar_facts", "timer_status", "what_can_you_do"}
    assert not registry.read_only("no_such_tool")


def test_clock_prompt_for_models_without_tools() -> None:
    assert clock_prompt(ToolContext(time_zone="Europe/Paris", clock=fixed_clock)) == (
        "It is now 12:30 AM on Sunday, March 1, 2026 (time zone Europe/Paris)."
    )


async def test_results_round_trip_through_dicts_for_replay() -> None:
    registry = add_builtin_tools(ToolRegistry())
    result = await registry.call("calculator", {"expression": "6 * 7"}, ToolContext())
    again = result_from_dict(result.to_dict())
    assert (again.ok, again.text, again.spoken, dict(again.data)) == (
        True,
        "6 * 7 = 42",
        "6 times 7 is 42.",
        dict(result.data),
    )
