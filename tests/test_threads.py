"""Running model code in worker threads: results, errors, early stops and the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from voicebot.threads import CORES, Cores, iterate_in_thread, model_call, run_blocking

current_session: contextvars.ContextVar[str] = contextvars.ContextVar("current_session", default="none")


async def test_run_blocking_returns_from_another_thread_with_the_callers_context() -> None:
    current_session.set("abc")
    loop_thread = threading.get_ident()
    thread, session = await run_blocking(lambda: (threading.get_ident(), current_session.get()))
    assert thread != loop_thread and session == "abc"


async def test_the_event_loop_keeps_running_while_a_model_blocks() -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.create_task(tick())
    await run_blocking(lambda: time.sleep(0.3))
    ticker.cancel()
    assert ticks >= 10


async def test_iterate_in_thread_yields_items_and_raises_errors() -> None:
    def items(stop: threading.Event) -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("model broke")

    seen: list[int] = []
    with pytest.raises(ValueError, match="model broke"):
        async for item in iterate_in_thread(items):
            seen.append(item)
    assert seen == [1, 2]


async def test_a_consumer_that_stops_early_stops_the_worker() -> None:
    produced: list[int] = []
    finished = threading.Event()

    def endless(stop: threading.Event) -> Iterator[int]:
        try:
            for index in range(10_000):
                if stop.is_set():
                    return
                produced.append(index)
                time.sleep(0.005)
                yield index
        finally:
            finished.set()

    stream = iterate_in_thread(endless)
    async for item in stream:
        if item == 3:
            break
    await stream.aclose()
    assert await asyncio.to_thread(finished.wait, 2.0)
    assert len(produced) < 50


async def test_model_calls_are_counted_while_they_run_in_any_thread() -> None:
    started, finish = threading.Event(), threading.Event()

    def call() -> None:
        with model_call():
            started.set()
            finish.wait(5)

    assert CORES.calls_running() == 0
    running = asyncio.create_task(run_blocking(call))
    await asyncio.to_thread(started.wait, 5)
    with model_call():
        assert CORES.calls_running() == 2
    assert CORES.calls_running() == 1
    assert not CORES.take_all()  # the LLM keeps to one thread beside a model call
    finish.set()
    await running
    assert CORES.calls_running() == 0


def test_a_model_call_waits_for_an_llm_step_that_has_every_core() -> None:
    cores = Cores()
    assert cores.take_all()
    entered = threading.Event()

    def call() -> None:
        with cores.model_call():
            entered.set()

    other = threading.Thread(target=call)
    other.start()
    assert not entered.wait(0.1)  # the step is still running
    assert not cores.take_all()  # ... and the next step will not take every core from the waiting call
    cores.give_back()
    assert entered.wait(5)
    other.join()
    assert cores.take_all()  # nothing runs or waits any more
    cores.give_back()
