"""What a session tells whoever watches it from outside (the server's metrics), through one small seam.

The session already has a single place for each thing worth counting: every turn event passes through
``VoiceSession._turn_event``, every error through ``_send``, every dropped microphone frame through one
counter. Each of those places also calls the observer, so a watcher needs no knowledge of the session's
insides and the session none of Prometheus. The default observer does nothing.
"""

from __future__ import annotations

from typing import Protocol

from voicebot.turn.events import TurnEvent


class SessionObserver(Protocol):
    """Called from the session loop; each call must be quick and must not raise."""

    def session_opened(self) -> None:
        """The session started serving its connection."""

    def session_closed(self) -> None:
        """The session ended (the client left, or the server is stopping)."""

    def turn_event(self, event: TurnEvent, at_ms: float | None) -> None:
        """A turn event the session handled, with when it happened in ms since the user released the
        button (``None`` while the user is still speaking). Events of cancelled utterances never come."""

    def error_sent(self, code: str) -> None:
        """An ``error`` message with this stable code went to the page."""

    def barge_in(self) -> None:
        """The user pressed the microphone while the assistant was transcribing, thinking or speaking."""

    def audio_dropped(self) -> None:
        """A microphone frame was dropped: it came while not listening, or the mailbox was flooded."""


class NoObserver:
    """The observer of a session nobody watches."""

    def session_opened(self) -> None:
        pass

    def session_closed(self) -> None:
        pass

    def turn_event(self, event: TurnEvent, at_ms: float | None) -> None:
        pass

    def error_sent(self, code: str) -> None:
        pass

    def barge_in(self) -> None:
        pass

    def audio_dropped(self) -> None:
        pass
