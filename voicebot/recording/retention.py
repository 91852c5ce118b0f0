"""Retention of recordings: remove the old ones, then the oldest until all fit a size limit.

Recordings hold people's voices; a server that records keeps them only as long as the settings say.
Folders of sessions still running in this process are never removed.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path

from voicebot.recording.layout import folder_time

#: Recording folders of sessions still running in this process: retention never removes them.
ACTIVE: set[Path] = set()


def _size(path: Path) -> int:
    total = 0
    for item in path.rglob("*"):
        try:
            if item.is_file():
                total += item.stat().st_size
        except OSError:
            pass
    return total


def prune_recordings(
    directory: Path,
    max_age_days: float,
    max_total_mb: float,
    keep: Collection[Path] = (),
    now: datetime | None = None,
) -> list[Path]:
    """Remove recording folders older than ``max_age_days``, then the oldest ones until all together
    take at most ``max_total_mb`` (0 turns either limit off). Folders in ``keep`` (sessions still
    running) and anything that is not a recording folder are left alone. Returns what was removed,
    oldest first. Blocking: call it from a worker thread."""
    if not directory.is_dir():
        return []
    now = now or datetime.now(UTC)
    folders = sorted(
        ((started, path) for path in directory.iterdir() if path.is_dir() and (started := folder_time(path))),
        key=lambda item: (item[0], item[1].name),
    )
    protected = {path.resolve() for path in keep}
    removed: list[Path] = []

    def remove(path: Path) -> bool:
        if path.resolve() in protected:
            return False
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        return True

    remaining: list[Path] = []
    for started, path in folders:
        if max_age_days > 0 and now - started > timedelta(days=max_age_days) and remove(path):
            continue
        remaining.append(path)
    if max_total_mb > 0:
        sizes = {path: _size(path) for path in remaining}
        total, limit = sum(sizes.values()), max_total_mb * 1024 * 1024
        for path in remaining:
            if total <= limit:
                break
            if remove(path):
                total -= sizes[path]
    return removed
