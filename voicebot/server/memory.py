"""Fewer malloc arenas, so that the server's memory does not grow with every thread that ran a model.

glibc gives each thread that allocates its own malloc arena (up to eight per core), and memory freed
in one arena is not reused by another. The model runtimes allocate large buffers of varying size
from many worker threads (ONNX Runtime for every sentence Piper speaks and every partial transcript,
numpy in the detector), so each worker thread ended up holding its own high-water mark: with four
sessions talking, resident memory grew by a few hundred MiB more than the models need. Two arenas
keep allocation fast enough for a handful of threads and give freed memory back to every thread.

Same effect as starting the process with ``MALLOC_ARENA_MAX=2``, but it cannot be forgotten.

Memory freed in the middle of a heap still stays with the process until ``malloc_trim`` hands its
pages back: :func:`give_back_free_memory` runs when a turn ends (at most every few seconds), which
brought the server from about 1.1 GiB back to about 0.7 GiB between the turns of four sessions.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from functools import cache
from typing import Any

from voicebot.session.observer import SessionObserver
from voicebot.turn.events import TurnEvent, TurnFinished

#: ``M_ARENA_MAX`` in glibc's ``malloc.h``.
_M_ARENA_MAX = -8
ARENAS = 2


#: Least time between two :func:`give_back_free_memory` calls that trim (seconds).
TRIM_INTERVAL_S = 5.0
_last_trim = -TRIM_INTERVAL_S


@cache
def _libc_function(name: str) -> Any:
    """A glibc function, or ``None`` off glibc (musl, macOS: nothing to do there)."""
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (threads that start allocating later share them); whether it
    applied (``False`` off glibc, e.g. on musl or macOS, where there is nothing to do)."""
    mallopt = _libc_function("mallopt")
    return mallopt is not None and bool(mallopt(_M_ARENA_MAX, arenas))


def give_back_free_memory() -> bool:
    """Return the free pages of every malloc heap to the system, unless that was done less than
    :data:`TRIM_INTERVAL_S` ago; whether it ran. Blocking (5-60 ms measured): call it off the loop."""
    global _last_trim
    malloc_trim = _libc_function("malloc_trim")
    now = time.monotonic()
    if malloc_trim is None or now - _last_trim < TRIM_INTERVAL_S:
        return False
    _last_trim = now
    malloc_trim(0)
    return True


class GiveBackAfterTurns:
    """A session observer that passes everything on to ``inner`` (the metrics) and, when a turn
    ends, gives free memory back (:func:`give_back_free_memory`, in a worker thread)."""

    def __init__(self, inner: SessionObserver) -> None:
        self._inner = inner

    def session_opened(self) -> None:
        self._inner.session_opened()

    def session_closed(self) -> None:
        self._inner.session_closed()

    def turn_event(self, event: TurnEvent, at_ms: float | None) -> None:
        self._inner.turn_event(event, at_ms)
        if isinstance(event, TurnFinished):
            asyncio.get_running_loop().run_in_executor(None, give_back_free_memory)

    def error_sent(self, code: str) -> None:
        self._inner.error_sent(code)

    def barge_in(self) -> None:
        self._inner.barge_in()

    def audio_dropped(self) -> None:
        self._inner.audio_dropped()
