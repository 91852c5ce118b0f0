"""What one client may cost: how fast it may send control messages, how many malformed messages in a
row it may send, and the close codes a session ends with when it breaks a limit (docs/protocol.md).

The session asks :class:`ClientPolicy` about each frame; a broken limit raises :class:`CloseSession`,
which the session loop turns into the end of the session and the WebSocket close code the page sees.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from voicebot.settings import LimitsSettings

NORMAL = 1000
GOING_AWAY = 1001
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013


@dataclass(frozen=True)
class Close:
    """How the server ends a session: a WebSocket close code and a reason the page may show."""

    code: int
    reason: str
    """Short, plain words (at most 123 bytes: the limit of a close frame's reason)."""


SERVER_SHUTDOWN = Close(GOING_AWAY, "The server is restarting. Reconnecting shortly…")
SLOW_CLIENT = Close(POLICY_VIOLATION, "The page stopped reading what the server sent.")
FLOOD = Close(POLICY_VIOLATION, "Too many messages: the page sent faster than the server allows.")


class CloseSession(Exception):
    """A client broke a limit; the session ends with ``close``."""

    def __init__(self, close: Close, detail: str) -> None:
        super().__init__(detail)
        self.close = close
        self.detail = detail


class ClientPolicy:
    """Counts one client's frames against ``limits``: a token bucket for control (text) messages and a
    run of malformed messages."""

    def __init__(self, limits: LimitsSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = limits.control_messages_per_s
        self._burst = 2 * limits.control_messages_per_s
        self._tokens = self._burst
        self._max_malformed = limits.malformed_messages
        self._clock = clock
        self._last = clock()
        self.malformed_in_a_row = 0

    def control_message(self) -> None:
        """A text frame arrived; raise :class:`CloseSession` when they come too fast."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens < 1:
            raise CloseSession(
                FLOOD,
                f"more than {self._rate:g} control messages per second",
            )
        self._tokens -= 1

    def malformed(self) -> None:
        """A frame could not be used; raise :class:`CloseSession` at the threshold."""
        self.malformed_in_a_row += 1
        if self.malformed_in_a_row >= self._max_malformed:
            raise CloseSession(
                Close(POLICY_VIOLATION, "Too many malformed messages."),
                f"{self.malformed_in_a_row} malformed messages in a row",
            )

    def well_formed(self) -> None:
        self.malformed_in_a_row = 0
