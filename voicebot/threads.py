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
import heapq
import itertools
import os
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Generic, TypeVar, cast

T = TypeVar("T")

#: Worker threads for inference. Many more than cores: a call waits in its thread for a core (see
#: :class:`Cores`), which hands the cores out in the order the work is needed; the pool must not
#: queue calls first in its own order.
_EXECUTOR = ThreadPoolExecutor(max_workers=16, thread_name_prefix="voicebot-model")
END = object()
"""Posted to a :class:`LoopInbox` after the last item."""


#: When the current task's model work is needed, as a monotonic time (see :func:`needed_by`).
_DEADLINE: contextvars.ContextVar[Callable[[], float] | None] = contextvars.ContextVar("work_deadline", default=None)


@contextlib.contextmanager
def needed_by(deadline: Callable[[], float]) -> Iterator[None]:
    """Model calls made in this block (and in tasks and worker threads started from it, which copy
    the context) are needed by ``deadline()``, a ``time.monotonic()`` value asked when each call
    queues: it may move (a reply's next sentence is needed when the audio before it runs out)."""
    token = _DEADLINE.set(deadline)
    try:
        yield
    finally:
        # A coroutine closed by the garbage collector (its loop gone) runs this outside its task's
        # context, where there is nothing to restore.
        with contextlib.suppress(ValueError):
            _DEADLINE.reset(token)


def current_deadline() -> float:
    """When the calling context's work is needed; work nobody labelled is needed now (first come,
    first served)."""
    deadline = _DEADLINE.get()
    return time.monotonic() if deadline is None else deadline()


class Cores:
    """A number of cores handed to model calls in the order their work is needed.

    Two cores serve every session. When more calls run than there are cores, all of them slow down:
    llama.cpp's threads wait for each other in a spinning barrier, and the thread that lost its core
    stalls the step (64 tokens beside a Piper loop took 5.5 s with two threads, 2.0 s with one, 0.73 s
    alone, measured here); four Moonshine passes at once made a fifth call, the model's first words,
    ten times slower. So a call takes a core before it runs and waits while none is free, and the
    waiting call whose work is needed first (the earliest deadline, see :func:`needed_by`) gets the
    next one: a turn whose user stopped speaking first gets its transcript, words and first audio
    first, and a partial transcript only shown on the page goes after both.

    The model may use every core for one step (:meth:`take`) when nothing else runs or waits.
    ``Cores(1)`` is a lock that its waiters get by deadline (Piper's one piece at a time).
    """

    def __init__(self, count: int) -> None:
        self.count = max(1, count)
        self._changed = threading.Condition()
        self._in_use = 0
        self._queue: list[tuple[float, int]] = []
        self._tickets = itertools.count()

    def take(self, want: int = 1, deadline: float | None = None) -> int:
        """Wait for cores: at least one, up to ``want`` when no other call waits; how many were taken
        (hand them back with :meth:`give`). ``deadline``: when the work is needed (default: the
        calling context's, :func:`current_deadline`)."""
        entry = (current_deadline() if deadline is None else deadline, next(self._tickets))
        with self._changed:
            heapq.heappush(self._queue, entry)
            self._changed.wait_for(lambda: self._queue[0] == entry and self._in_use < self.count)
            heapq.heappop(self._queue)
            free = self.count - self._in_use
            taken = min(want, free) if not self._queue else 1
            self._in_use += taken
            if self._queue and self._in_use < self.count:
                self._changed.notify_all()  # the next in line may start too
            return taken

    def give(self, count: int = 1) -> None:
        with self._changed:
            self._in_use -= count
            self._changed.notify_all()

    @contextlib.contextmanager
    def call(self, deadline: float | None = None) -> Iterator[None]:
        """One core for the block (see :meth:`take`)."""
        self.take(1, deadline)
        try:
            yield
        finally:
            self.give(1)

    def in_use(self) -> int:
        """How many cores calls hold now."""
        return self._in_use

    def waiting(self) -> int:
        """How many calls wait for a core."""
        return len(self._queue)

    def first_waiting(self) -> float | None:
        """The earliest deadline among the calls waiting for a core (None: none waits)."""
        with self._changed:
            return self._queue[0][0] if self._queue else None


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


#: The process's cores.
CORES = Cores(_available_cores())


def model_call(deadline: float | None = None) -> contextlib.AbstractContextManager[None]:
    """One of the process's cores for a model call (a Piper piece, a Moonshine pass) in this thread."""
    return CORES.call(deadline)


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


class StopEvent(threading.Event):
    """A stop flag that can also act the moment it is set: a model run that checks the flag only
    between items (a Piper piece takes up to 0.7 s under load) registers a callback that cuts the run
    itself short (ONNX Runtime's ``terminate``), so the cores are free for the next turn at once."""

    def __init__(self) -> None:
        super().__init__()
        self._callbacks_lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    def set(self) -> None:
        super().set()
        with self._callbacks_lock:
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    @contextlib.contextmanager
    def calling(self, callback: Callable[[], None]) -> Iterator[None]:
        """``callback()`` (from the setting thread; keep it short) if the flag is set while in this
        block, or at once if it is already set."""
        with self._callbacks_lock:
            self._callbacks.append(callback)
        if self.is_set():
            callback()
        try:
            yield
        finally:
            with self._callbacks_lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)


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
    make_iterator: Callable[[StopEvent], Iterator[T]], executor: ThreadPoolExecutor | None = None
) -> AsyncIterator[T]:
    """Consume a blocking iterator in a worker thread, yielding its items on the event loop.

    ``make_iterator`` receives a ``stop`` event that is set when the consumer stops early; the
    iterator should check it between items (this function checks it too) so the thread is freed,
    and may register with :meth:`StopEvent.calling` to cut a long item short.
    Exceptions raised in the thread are re-raised here. ``executor``: where to run it (default: the
    shared model workers).
    """
    stop = StopEvent()
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
