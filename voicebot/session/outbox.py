"""Everything a session sends, in order, through one bounded queue and one writer task.

The session loop queues its JSON events and the playback queues reply audio frames; a single task
writes them to the socket in the order they were queued, so ``audio_start`` always precedes the audio
it announces and two tasks never write at once. The queue is bounded: a client that stops reading
fills it, and the session is closed with a logged reason instead of growing the server's memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable


class OutboxFull(Exception):
    """The client has not read what was sent for too long."""


class Outbox:
    """An ordered, bounded queue of frames (``str`` or ``bytes``) and the task that sends them.

    ``on_closed`` is called once when sending fails (the client went away)."""

    def __init__(
        self,
        send_text: Callable[[str], Awaitable[None]],
        send_bytes: Callable[[bytes], Awaitable[None]],
        on_closed: Callable[[], None],
        max_frames: int,
    ) -> None:
        self._send_text = send_text
        self._send_bytes = send_bytes
        self._on_closed = on_closed
        self._queue: asyncio.Queue[str | bytes] = asyncio.Queue(max_frames)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._write(), name="outbox")

    def put(self, frame: str | bytes) -> None:
        """Queue a frame; raise :class:`OutboxFull` when the client is too far behind."""
        try:
            self._queue.put_nowait(frame)
        except asyncio.QueueFull:
            raise OutboxFull(f"the client read nothing of the last {self._queue.maxsize} frames") from None

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def flush(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) until everything queued has been handed to the socket."""
        if self._task is None or self._task.done():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), timeout_s)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _write(self) -> None:
        try:
            while True:
                frame = await self._queue.get()
                try:
                    if isinstance(frame, str):
                        await self._send_text(frame)
                    else:
                        await self._send_bytes(frame)
                finally:
                    self._queue.task_done()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any send failure means the client is gone
            self._on_closed()
