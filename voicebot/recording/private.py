"""Recordings hold people's voices and words: their folders and files are created readable by the
owner only (0700 and 0600), whatever the process umask, and never widened afterwards."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TextIO

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) for the owner only; tighten it when it already exists."""
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    with contextlib.suppress(OSError):  # not ours to change (a shared mount): leave it
        if path.stat().st_mode & 0o077:
            path.chmod(DIR_MODE)


def open_private(path: Path, mode: str, **kwargs: object) -> TextIO:
    """Open a text file for writing or appending (``"w"``/``"a"``), created as 0600."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if "a" in mode else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    return open(fd, mode, **kwargs)  # type: ignore[call-overload,no-any-return]


def write_private(path: Path, data: bytes | str) -> None:
    """Write a whole file, created as 0600."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with open(fd, "wb") as file:
        file.write(data.encode("utf-8") if isinstance(data, str) else data)
