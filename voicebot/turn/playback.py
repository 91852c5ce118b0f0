"""One turn's reply playback: the single owner of pacing and of what the listener has heard.

The session hands it whole synthesised segments (so it knows each one's full duration). A pacing task
sends each segment as frames of ``frame_ms``, never more than ``lead_ms`` ahead of real-time playback
counted from the first frame: the page plays what it gets at once, so pacing keeps the turn alive
while the user is still hearing it, and a barge-in stops what is not yet sent. There is one clock,
modelled on the page's player: the reply's start plays when the first frame is sent, each frame
right after the one before, and a frame that arrives after the page ran dry (the next sentence was
still being synthesised) plays on arrival, which shifts everything after it. :meth:`plays_at` says
when a frame is heard, and :meth:`heard` answers "what was heard at ``played_ms``" from the
segments' full durations: whole sentences, and the words of the cut one in proportion.

The clock and sleep are injectable so tests run the pacing without waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from voicebot import audio
from voicebot.turn.text import SpokenSegment, heard_text

#: How long after the estimated end of playback a turn still counts as speaking: the page starts
#: playing a little after the first frame leaves the server.
PLAYBACK_SLACK_MS = 250


class Playback:
    """Paces one reply's audio to real time and knows what was heard.

    ``send(frame, offset_ms)`` puts one binary frame on its way to the page (``offset_ms``: where the
    frame starts in the reply). ``on_sent(duration_ms)`` is called once the
    last frame of a closed playback was sent, ``on_drained()`` once the page has had time to play it.
    """

    def __init__(
        self,
        send: Callable[[bytes, float], None],
        sample_rate: int,
        frame_ms: int,
        lead_ms: int,
        on_sent: Callable[[float], None],
        on_drained: Callable[[], None],
        *,
        realtime: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.sample_rate = sample_rate
        self._send = send
        self._frame_ms = frame_ms
        self._lead_ms = lead_ms
        self._on_sent = on_sent
        self._on_drained = on_drained
        self._realtime = realtime
        self._clock = clock
        self._sleep = sleep
        self.segments: list[SpokenSegment] = []
        self.started_at: float | None = None
        """When the first frame was sent (the clock's time)."""
        self._origin: float | None = None
        """When the reply's offset 0 would have played, given every time the page ran dry."""
        self.sent_ms = 0.0
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def total_ms(self) -> float:
        """The full length of every segment handed over so far."""
        return sum(segment.duration_ms for segment in self.segments)

    def add(self, text: str, pcm: bytes) -> None:
        """Queue a whole segment (its text and all its audio) after the ones already queued."""
        self.segments.append(SpokenSegment(text, audio.duration_ms(len(pcm), self.sample_rate)))
        self._queue.put_nowait(pcm)
        if self._task is None:
            self._task = asyncio.create_task(self._pace(), name="playback")

    def close(self) -> None:
        """No more segments: report when the last one is sent and when it has been heard."""
        self._queue.put_nowait(None)
        if self._task is None:
            self._task = asyncio.create_task(self._pace(), name="playback")

    def plays_at(self, offset_ms: float) -> float | None:
        """When (the clock's time) the page plays the reply at ``offset_ms``, if nothing more runs dry
        before it (``None`` before the first frame)."""
        return None if self._origin is None else self._origin + offset_ms / 1000

    def played_ms(self, reported_ms: int | None = None) -> float:
        """How much was played: what the page reported, or (without it) the real time since the start
        of playback less the time the page ran dry; never more than was sent."""
        if self._origin is None:
            return 0.0
        played = (self._clock() - self._origin) * 1000 if reported_ms is None else float(reported_ms)
        return max(0.0, min(played, self.sent_ms))

    def heard(self, reported_ms: int | None = None) -> str:
        """What of the reply was heard (see :func:`voicebot.turn.text.heard_text`)."""
        return heard_text(self.segments, self.played_ms(reported_ms))

    def stop(self) -> None:
        """Send nothing more (a barge-in, a reset, the session closing)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def _pace(self) -> None:
        while (pcm := await self._queue.get()) is not None:
            for frame in audio.frames(pcm, self.sample_rate, self._frame_ms):
                now = self._clock()
                if self._origin is None:
                    self.started_at = self._origin = now
                elif now > self._origin + self.sent_ms / 1000:
                    self._origin = now - self.sent_ms / 1000  # the page ran dry: this frame plays now
                ahead_ms = self.sent_ms - (now - self._origin) * 1000
                if self._realtime and ahead_ms > self._lead_ms:
                    await self._sleep((ahead_ms - self._lead_ms) / 1000)
                self._send(frame, self.sent_ms)
                self.sent_ms += audio.duration_ms(len(frame), self.sample_rate)
        self._on_sent(self.sent_ms)
        if self._realtime and self._origin is not None:
            remaining_ms = self.sent_ms - (self._clock() - self._origin) * 1000
            if remaining_ms > 0:
                await self._sleep((remaining_ms + PLAYBACK_SLACK_MS) / 1000)
        self._on_drained()
