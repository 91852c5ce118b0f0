"""Running blocking model code off the event loop.

Inference (Whisper, llama.cpp, Piper) blocks for tens to thousands of milliseconds; it runs in worker
threads so that no session's work freezes the loop that serves every other session. Streaming models
are bridged with :func:`iterate_in_thread`, which stops the worker between items when the consumer
goes away (a barge-in cancels the turn task, and the model stops generating at the next token).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar, cast

T = TypeVar("T")

#: Worker threads for inference. A few more than cores: most of a model call releases the GIL, and
#: a session waiting on a lock (llama.cpp) must not hold up another session's Whisper or Piper call.
_EXECUTOR = ThreadPoolExecutor(max_workers=8, thread_name_prefix="voicebot-model")
END = object()
"""Posted to a :class:`LoopInbox` after the last item."""


class Cores:
    """Who may use every core: the embedded LLM between two of its steps, or other model calls.

    llama.cpp's threads wait for each other in a spinning barrier. When Piper or Moonshine takes one
    of the two cores in the middle of a step, the thread that lost its core stalls the step, and the
    other spins: 64 tokens beside a Piper loop took 5.5 s with two threads, 2.0 s with one, 0.73 s
    alone (measured here). So a step runs with every thread only when no other model call runs, and
    no other model call starts during such a step: it waits for the step to end (tens of ms). Steps
    taken while other calls run use one thread and share the cores with them.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._calls = 0
        self._waiting = 0
        self._whole = False

    @contextlib.contextmanager
    def model_call(self) -> Iterator[None]:
        """A long model call (a Piper piece, a Moonshine pass) in this thread."""
        with self._changed:
            self._waiting += 1
            self._changed.wait_for(lambda: not self._whole)
            self._waiting -= 1
            self._calls += 1
        try:
            yield
        finally:
            with self._changed:
                self._calls -= 1

    def take_all(self) -> bool:
        """For one step of the LLM: whether it may use every core (then :meth:`give_back` after it).
        Not while another model call runs or waits to start."""
        with self._changed:
            if self._calls or self._waiting:
                return False
            self._whole = True
            return True

    def give_back(self) -> None:
        with self._changed:
            self._whole = False
            self._changed.notify_all()

    def calls_running(self) -> int:
        """How many :meth:`model_call` blocks are running now."""
        return self._calls


#: The process's cores.
CORES = Cores()
model_call = CORES.model_call


def dedicated_thread(name: str) -> ThreadPoolExecutor:
    """One worker thread of its own, for a library that must always be called from the same thread.

    llama.cpp (built with OpenMP) starts a team of compute threads for every OS thread that calls
    it, and the teams then compete for the cores: measured here, SmolLM2 takes 13 ms a token when it is
    only ever called from one thread, and 40–50 ms a token once a second thread has called it, from
    then on and from either thread."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)


async def run_blocking(func: Callable[[], T], executor: ThreadPoolExecutor | None = None) -> T:
    """Run ``func`` in a model worker thread (or in ``executor``) and wait for its result. The caller's
    context variables (the session's log binding) go with it, so library log lines from the thread
    name the session."""
    context = contextvars.copy_context()
    return await asyncio.get_running_loop().run_in_executor(executor or _EXECUTOR, context.run, func)


class LoopInbox(Generic[T]):
    """Items posted from any thread, read on the event loop that created the inbox: the bridge
    from a model's thread to a session's task. Post items, then an exception or :data:`END`."""

    def __init__(self, stop: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[object] = asyncio.Queue()
        self._stop = stop

    def post(self, item: object) -> None:
        """From any thread. If the loop has closed (server shutting down) nobody is listening:
        ``stop`` is set so that the producer gives up."""
        try:
            self._loop.call_soon_threadsafe(self._queue.put_nowait, item)
        except RuntimeError:
            self._stop.set()

    async def items(self) -> AsyncIterator[T]:
        """The items until :data:`END`; a posted exception is raised here."""
        while True:
            item = await self._queue.get()
            if item is END:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(T, item)


async def iterate_in_thread(
    make_iterator: Callable[[threading.Event], Iterator[T]], executor: ThreadPoolExecutor | None = None
) -> AsyncIterator[T]:
    """Consume a blocking iterator in a worker thread, yielding its items on the event loop.

    ``make_iterator`` receives a ``stop`` event that is set when the consumer stops early; the
    iterator should check it between items (this function checks it too) so the thread is freed.
    Exceptions raised in the thread are re-raised here. ``executor``: where to run it (default: the
    shared model workers).
    """
    stop = threading.Event()
    inbox: LoopInbox[T] = LoopInbox(stop)

    def produce() -> None:
        try:
            for item in make_iterator(stop):
                if stop.is_set():
                    break
                inbox.post(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            inbox.post(exc)
        finally:
            inbox.post(END)

    loop = asyncio.get_running_loop()
    worker = loop.run_in_executor(executor or _EXECUTOR, contextvars.copy_context().run, produce)
    try:
        async for item in inbox.items():
            yield item
    finally:
        stop.set()
        # The worker sees ``stop`` at its next item; we do not wait for it (a cancelled turn must
        # release the session at once), but we keep a reference until it ends.
        _pending.add(worker)
        worker.add_done_callback(_pending.discard)


_pending: set[asyncio.Future[None]] = set()
