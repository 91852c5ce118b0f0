"""Fewer malloc arenas, so that the server's memory does not grow with every thread that ran a model.

glibc gives each thread that allocates its own malloc arena (up to eight per core), and memory freed
in one arena is not reused by another. The model runtimes allocate large buffers of varying size
from many worker threads (ONNX Runtime for every sentence Piper speaks and every partial transcript,
numpy in the detector), so each worker thread ended up holding its own high-water mark: with four
sessions talking, resident memory grew by a few hundred MiB more than the models need. Two arenas
keep allocation fast enough for a handful of threads and give freed memory back to every thread.

Same effect as starting the process with ``MALLOC_ARENA_MAX=2``, but it cannot be forgotten.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: ``M_ARENA_MAX`` in glibc's ``malloc.h``.
_M_ARENA_MAX = -8
ARENAS = 2


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (threads that start allocating later share them); whether it
    applied (``False`` off glibc, e.g. on musl or macOS, where there is nothing to do)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_ARENA_MAX, arenas))
