"""Running model code in worker threads: results, errors, early stops and the caller's context."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import Iterator

import pytest

from voicebot.threads import (
    CORES,
    Cores,
    StopEvent,
    current_deadline,
    iterate_in_thread,
    model_call,
    needed_by,
    run_blocking,
)

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


async def test_a_model_call_holds_a_core_while_it_runs_in_any_thread() -> None:
    started, finish = threading.Event(), threading.Event()

    def call() -> None:
        with model_call():
            started.set()
            finish.wait(5)

    assert CORES.in_use() == 0
    running = asyncio.create_task(run_blocking(call))
    await asyncio.to_thread(started.wait, 5)
    assert CORES.in_use() == 1
    finish.set()
    await running
    assert CORES.in_use() == 0


def _queue_calls(cores: Cores, deadlines: dict[str, float]) -> tuple[list[str], list[threading.Thread]]:
    """One thread per name, each waiting for a core with its deadline, queued in the dict's order."""
    order: list[str] = []
    threads = []
    for name, deadline in deadlines.items():

        def call(name: str = name, deadline: float = deadline) -> None:
            with cores.call(deadline):
                order.append(name)
                time.sleep(0.01)

        thread = threading.Thread(target=call)
        thread.start()
        threads.append(thread)
        while cores.waiting() < len(threads):  # queued, in this order
            time.sleep(0.001)
    return order, threads


def test_no_more_calls_run_than_there_are_cores_and_the_one_needed_first_goes_next() -> None:
    cores = Cores(2)
    running = [0, 0]  # now, most
    lock = threading.Lock()
    blocker = cores.take(2)  # something holds both cores while the calls queue
    assert blocker == 2
    now = time.monotonic()
    order, threads = _queue_calls(cores, {"late": now + 5, "soon": now + 1, "sooner": now, "later": now + 3})
    cores.give(2)
    for thread in threads:
        thread.join(5)
    assert order == ["sooner", "soon", "later", "late"]  # not the order they came in

    def busy() -> None:
        with cores.call():
            with lock:
                running[0] += 1
                running[1] = max(running)
            time.sleep(0.02)
            with lock:
                running[0] -= 1

    workers = [threading.Thread(target=busy) for _ in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(5)
    assert running == [0, 2]


def test_a_step_takes_every_core_only_when_no_other_call_waits() -> None:
    cores = Cores(2)
    assert cores.take(2) == 2  # nothing else runs or waits
    order, threads = _queue_calls(cores, {"piper": time.monotonic()})
    cores.give(2)
    for thread in threads:
        thread.join(5)
    assert order == ["piper"]
    with cores.call():
        assert cores.take(2) == 1  # one core is taken: the step gets the other
        cores.give(1)
    assert cores.in_use() == 0


def test_a_lock_of_one_is_taken_by_deadline_too() -> None:
    lock = Cores(1)
    lock.take()
    now = time.monotonic()
    order, threads = _queue_calls(lock, {"rest of a story": now + 1.5, "first words": now + 0.3})
    lock.give()
    for thread in threads:
        thread.join(5)
    assert order == ["first words", "rest of a story"]


async def test_the_deadline_goes_with_the_work_into_worker_threads() -> None:
    assert abs(current_deadline() - time.monotonic()) < 0.05  # unlabelled work: needed now
    with needed_by(lambda: 1234.5):
        assert await run_blocking(current_deadline) == 1234.5
        items = [item async for item in iterate_in_thread(lambda stop: iter([current_deadline()]))]
        assert items == [1234.5]
        task = asyncio.create_task(run_blocking(current_deadline))
    assert await task == 1234.5  # the task copied the context when it was created
    assert current_deadline() != 1234.5


def test_a_stop_event_calls_back_only_while_in_the_block() -> None:
    stop = StopEvent()
    calls: list[str] = []
    with stop.calling(lambda: calls.append("inside")):
        assert calls == []
        stop.set()
        assert calls == ["inside"]
    late = StopEvent()
    with late.calling(lambda: calls.append("before")):
        pass
    late.set()  # the block had ended: nothing to stop
    with late.calling(lambda: calls.append("already set")):
        pass
    assert calls == ["inside", "already set"]
