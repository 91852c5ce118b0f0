"""Work that someone is waiting for goes first.

Two cores serve every session. Most of a turn's work is not waited for: a reply of twenty seconds
is written and synthesised in two or three, far ahead of the listener, and partial transcripts are
only shown on the page. Done as fast as possible, that work lands on the cores at the moment another
session releases its button, and that session's transcript, first words and first audio share the
cores with it: measured with four sessions talking, the first audio of a turn came after up to 1.6 s
where it comes after 0.2 s alone.

So a turn between the end of the user's speech and its first audio *presses* (:meth:`Urgency.hold`),
and while any turn presses, work that can wait does: the model and the speech synthesis of a reply
that has at least ``ahead_ms`` of audio ready ahead of its listener, and partial transcripts. They go
on at full speed as soon as nothing presses, or as soon as the reply's lead falls to ``ahead_ms``
(so its listener never hears a gap). The work is the same; only its order changes.

The model's scheduler thread asks :meth:`ReplyLead.can_wait` before each step; everything else
waits on the loop (:meth:`Urgency.calm`, :meth:`ReplyLead.until_needed`).

What runs is then ordered by when it is needed (:meth:`ReplyLead.deadline`, given to every model call
of the turn through ``voicebot.threads.needed_by``): a turn's first audio shortly after it began to
press, its later sentences when the audio before them runs out. When several turns press at once,
the one whose user stopped speaking first is served first, instead of all of them sharing the cores
and all answering late.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

#: A turn's first audio is needed this long after the turn began to press (people answer each other
#: after about 200-300 ms). Only the order matters: a turn that began to press earlier goes first,
#: and so does a playing reply whose audio runs out before this.
FIRST_AUDIO_WITHIN_S = 0.3
#: A playing reply's model must be writing this long before its audio runs out: enough to write a
#: segment of the growing sizes (see ``voicebot.turn.text.SentenceSplitter``) and synthesise it
#: while other sessions share the cores.
WRITE_AHEAD_S = 1.0


class Urgency:
    """How many turns of one engine are on their way to their first audio. Held and released on
    the event loop; :attr:`pressing` may be read from any thread."""

    def __init__(self) -> None:
        self._pressing = 0
        self._calm = asyncio.Event()
        self._calm.set()

    @property
    def pressing(self) -> bool:
        """Whether some turn is waiting for its first audio."""
        return self._pressing > 0

    def hold(self) -> Callable[[], None]:
        """A turn presses until the returned function is called (calling it again does nothing)."""
        self._pressing += 1
        self._calm.clear()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self._pressing -= 1
                if not self._pressing:
                    self._calm.set()

        return release

    async def calm(self) -> None:
        """Return once no turn presses."""
        await self._calm.wait()


class ReplyLead:
    """How far a reply's synthesised audio runs ahead of its listener, estimated from when each
    segment was handed to the session (whose playback starts the first one at once). If the page ran
    dry, the real lead is longer than this estimate: the estimate errs on the side of not waiting."""

    def __init__(self, urgency: Urgency, ahead_ms: int) -> None:
        self._urgency = urgency
        self._ahead_ms = ahead_ms
        self._begun = time.monotonic()
        self._started: float | None = None
        self._ready_ms = 0.0

    def add(self, duration_ms: float) -> None:
        """A segment of ``duration_ms`` was handed to the session."""
        if self._started is None:
            self._started = time.monotonic()
        self._ready_ms += duration_ms

    def ms(self) -> float:
        """Audio ready and not yet heard (0 before the first segment)."""
        if self._started is None:
            return 0.0
        return self._ready_ms - (time.monotonic() - self._started) * 1000

    def deadline(self) -> float:
        """When this reply's next work is needed (``time.monotonic()``): its first audio
        :data:`FIRST_AUDIO_WITHIN_S` after the reply was begun, later audio when the audio handed
        over before it runs out. Safe to call from any thread."""
        if self._started is None:
            return self._begun + FIRST_AUDIO_WITHIN_S
        return self._started + self._ready_ms / 1000

    def text_deadline(self) -> float:
        """When the model must go on writing this reply: its first words as for :meth:`deadline`,
        later words :data:`WRITE_AHEAD_S` before the audio handed over runs out (they are still to
        be written to the end of their segment, and synthesised). Safe to call from any thread."""
        if self._started is None:
            return self.deadline()
        return self.deadline() - WRITE_AHEAD_S

    def can_wait(self) -> bool:
        """Whether this reply's next work may wait now: another turn presses and this one has more
        than ``ahead_ms`` ready. Safe to call from any thread (the model's scheduler calls it)."""
        return self._ahead_ms > 0 and self._urgency.pressing and self.ms() > self._ahead_ms

    async def until_needed(self) -> None:
        """Return when this reply's next work should run: at once, unless it can wait; then when no
        turn presses any more, or when the lead has fallen to ``ahead_ms``."""
        if self.can_wait():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgency.calm(), timeout=(self.ms() - self._ahead_ms) / 1000)
