"""Timers run on an injected clock: set, list, cancel, limits, and firing without real waiting."""

from __future__ import annotations

import asyncio

import pytest

from voicebot.tools.base import ToolContext, ToolRegistry
from voicebot.tools.builtins import add_builtin_tools, timer_done_announcement
from voicebot.tools.timers import ManualClock, Timer, TimerBoard, TimerError, format_duration


async def settle() -> None:
    """Let every ready task run (no time passes on any clock)."""
    for _ in range(10):
        await asyncio.sleep(0)


def board_with(clock: ManualClock, fired: list[Timer] | None = None, **limits: float) -> TimerBoard:
    return TimerBoard(
        on_fire=fired.append if fired is not None else None,
        clock=clock,
        max_timers=int(limits.get("max_timers", 10)),
        max_duration_s=limits.get("max_duration_s", 86_400),
    )


def test_set_list_remaining_and_cancel() -> None:
    clock = ManualClock()
    board = board_with(clock)
    eggs = board.set(300, label="eggs")
    tea = board.set(180)
    assert [timer.id for timer in board.running()] == [tea.id, eggs.id]  # earliest end first
    clock.advance(60)
    assert eggs.remaining_s(board.now()) == 240
    assert tea.to_dict(board.now()) == {"id": tea.id, "label": None, "duration_s": 180.0, "remaining_s": 120.0}
    assert board.find(label="EGGS") == [eggs]
    assert board.find(label="3 minute") == [tea]  # unnamed timers are called by their length
    with pytest.raises(TimerError, match="say which one"):
        board.cancel()
    assert board.cancel(label="eggs") == [eggs]
    assert board.cancel() == [tea]  # now the only one
    with pytest.raises(TimerError, match="no timer is running"):
        board.cancel()


def test_limits_on_count_and_duration() -> None:
    board = board_with(ManualClock(), max_timers=2, max_duration_s=3600)
    with pytest.raises(TimerError, match="at most 1 hour"):
        board.set(3601)
    with pytest.raises(TimerError, match="at least one second"):
        board.set(0.5)
    board.set(10)
    board.set(20)
    with pytest.raises(TimerError, match="already 2 timers"):
        board.set(30)
    assert len(board) == 2


async def test_fires_on_the_injected_clock_without_waiting() -> None:
    clock = ManualClock()
    fired: list[Timer] = []
    board = board_with(clock, fired)
    five = board.set(300)
    one = board.set(60, label="tea")
    runner = asyncio.create_task(board.run())
    try:
        await settle()
        clock.advance(59)
        await settle()
        assert fired == []
        clock.advance(1)
        await settle()
        assert fired == [one]
        clock.advance(239)
        await settle()
        assert fired == [one]
        clock.advance(1)
        await settle()
        assert fired == [one, five]
        assert len(board) == 0
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)


async def test_wait_fired_sees_timers_set_and_cancelled_while_waiting() -> None:
    clock = ManualClock()
    board = board_with(clock)
    waiter = asyncio.create_task(board.wait_fired())
    await settle()
    assert not waiter.done()  # nothing to wait for yet
    long = board.set(600)
    await settle()
    short = board.set(30)  # the waiter must now wake at 30 s, not 600 s
    await settle()
    clock.advance(30)
    await settle()
    assert waiter.done() and waiter.result() == [short]

    waiter = asyncio.create_task(board.wait_fired())
    await settle()
    board.cancel(timer_id=long.id)
    await settle()
    clock.advance(600)
    await settle()
    assert not waiter.done()  # the cancelled timer never fires
    again = board.set(5)
    await settle()
    clock.advance(5)
    await settle()
    assert waiter.result() == [again]


async def test_timers_due_together_fire_in_order_in_one_wake() -> None:
    clock = ManualClock()
    fired: list[Timer] = []
    board = board_with(clock, fired)
    first = board.set(10)
    second = board.set(20)
    waiter = asyncio.create_task(board.wait_fired())
    await settle()
    clock.advance(25)  # e.g. the loop was busy: both are due at the next wake
    await settle()
    assert waiter.result() == [first, second] == fired


async def test_timer_tools_speak_in_words() -> None:
    clock = ManualClock()
    context = ToolContext(timers=board_with(clock))
    registry = add_builtin_tools(ToolRegistry())

    result = await registry.call("set_timer", {"duration_s": 300}, context)
    assert result.ok and result.spoken == "Timer set for 5 minutes."
    clock.advance(75)
    status = await registry.call("timer_status", {}, context)
    assert status.spoken == "You have 3 minutes and 45 seconds left on your 5 minute timer."
    assert status.data["timers"][0]["remaining_s"] == 225

    await registry.call("set_timer", {"duration_s": 600, "label": "pasta"}, context)
    both = await registry.call("timer_status", {}, context)
    assert both.spoken == (
        "You have 2 timers: the 5 minute timer with 3 minutes and 45 seconds left; "
        "the pasta timer with 10 minutes left."
    )
    refused = await registry.call("cancel_timer", {}, context)
    assert not refused.ok and refused.error is not None and "say which one" in refused.error
    cancelled = await registry.call("cancel_timer", {"label": "pasta"}, context)
    assert cancelled.spoken == "Cancelled your pasta timer."
    everything = await registry.call("cancel_timer", {"all": True}, context)
    assert everything.spoken == "Cancelled your 5 minute timer."
    none = await registry.call("timer_status", {}, context)
    assert none.spoken == "No timer is running."

    too_long = await registry.call("set_timer", {"duration_s": 10 * 86_400}, context)
    assert not too_long.ok and too_long.error == "timers can run for at most 24 hours"


async def test_timer_tools_fail_politely_without_a_board() -> None:
    registry = add_builtin_tools(ToolRegistry())
    result = await registry.call("set_timer", {"duration_s": 60}, ToolContext())
    assert not result.ok and result.error == "timers are not available here"


@pytest.mark.parametrize(
    ("timer", "said"),
    [
        (Timer(id=1, duration_s=300, started=0), "Your 5 minute timer is done."),
        (Timer(id=2, duration_s=5400, started=0), "Your 1 hour 30 minute timer is done."),
        (Timer(id=3, duration_s=60, started=0, label="pasta"), "Your pasta timer is done."),
    ],
)
def test_done_announcement(timer: Timer, said: str) -> None:
    assert timer_done_announcement(timer) == said


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1, "1 second"), (90, "1 minute and 30 seconds"), (3600, "1 hour"), (3725, "1 hour, 2 minutes and 5 seconds")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
