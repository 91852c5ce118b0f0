"""When does the microphone hear what the speakers play? A map from the server's clock to the
microphone's stream time, for the echo guard.

The echo guard places the reply on the microphone's timeline (stream time: the duration of
microphone audio received since hands-free listening began). The server knows when it plays each
reply frame by its own clock, so it needs the stream time at a given moment. Counting what the
detector has judged so far is wrong when the server is busy: frames wait in the session's mailbox
and the detector falls behind, so the reply lands too early on the timeline, later than the guard's
delay search reaches.

Each frame's arrival says instead: by ``at``, the microphone had captured ``stream_end_ms``. A frame
is never early, only late (the network, a busy loop, a page that sends in bursts), so the frame
that arrived least late over the last few seconds gives the best estimate: the largest
``stream_end_ms - at``. Any error left is a delay, which the echo guard searches for.
"""

from __future__ import annotations

from collections import deque

#: How long an arrival is trusted: long enough to see past a burst, short enough to follow drift
#: between the page's audio clock and the server's.
SPAN_S = 3.0


class MicrophoneClock:
    """Server time (``time.monotonic()`` seconds) → microphone stream time (ms)."""

    def __init__(self, span_s: float = SPAN_S) -> None:
        self._span_s = span_s
        self._received_ms = 0.0
        # (arrival, offset) with decreasing offsets: the front is the least late arrival in the span.
        self._offsets: deque[tuple[float, float]] = deque()

    @property
    def received_ms(self) -> float:
        """Microphone audio received so far (its stream time)."""
        return self._received_ms

    def received(self, duration_ms: float, at: float) -> None:
        """A frame of ``duration_ms`` arrived at ``at``."""
        self._received_ms += duration_ms
        offset = self._received_ms - at * 1000.0
        while self._offsets and self._offsets[-1][1] <= offset:
            self._offsets.pop()
        self._offsets.append((at, offset))
        while self._offsets[0][0] < at - self._span_s:
            self._offsets.popleft()

    def stream_ms(self, at: float) -> float | None:
        """The microphone's stream time at server time ``at`` (``None`` before any frame)."""
        if not self._offsets:
            return None
        return at * 1000.0 + self._offsets[0][1]
