"""The seam between the session and whatever turns an utterance into a reply.

The session knows nothing of ASR, LLM or TTS. When the user starts speaking it asks its
:class:`TurnEngine` to ``listen``; it feeds the utterance's audio as it arrives, calls ``respond``
once the user has finished (in the turn's own task, which a barge-in cancels) and turns every
:data:`~voicebot.turn.events.TurnEvent` the engine emits into states, page messages, log lines and
recording lines. A batch ASR pipeline, a streaming recogniser that works while the button is held, a
hands-free endpointer in front of either, or a speech-to-speech model are all engines (or parts of
one); ``machine.py`` and the session loop do not change for any of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from voicebot.providers.base import Message
from voicebot.tools.base import ToolContext
from voicebot.turn.timing import Emit
from voicebot.turn.tools import RecordedResults


@dataclass(frozen=True)
class TurnContext:
    """What a turn knows of its session besides the conversation."""

    tools: ToolContext | None = None
    """The session's tool context (the page's time zone, its timers, the clock); ``None``: no tools."""
    recorded_tools: RecordedResults | None = None
    """Replay: answer tool calls with these recorded results instead of running the tools."""


NO_CONTEXT = TurnContext()


class Utterance(Protocol):
    """One utterance being heard, then answered."""

    def feed(self, pcm: bytes) -> None:
        """More of the user's audio (16 kHz mono s16le), while they speak. Must be cheap: it runs on
        the session's loop for every microphone frame."""
        ...

    def expect_end(self) -> None:
        """The user fell silent and may have finished (hands-free: the end is decided only after more
        silence). An engine may prepare the reply now, provided nothing of it is emitted and no tool
        runs before ``respond``. Called at most once between two ``resume`` calls."""
        ...

    def resume(self) -> None:
        """The user spoke again after ``expect_end``: drop whatever was prepared."""
        ...

    async def respond(self, started: float) -> None:
        """The user finished at ``started`` (``time.perf_counter()``, the turn's one time origin): emit
        the turn's events until its reply is fully produced. Failures are emitted as ``TurnFailed``,
        never raised. Cancelled on barge-in."""
        ...

    async def aclose(self) -> None:
        """Release what the utterance holds (a recognition stream); called however it ended."""
        ...


class TurnEngine(Protocol):
    """Makes utterances. One engine serves every session of a server."""

    def listen(self, history: Sequence[Message], emit: Emit, context: TurnContext = NO_CONTEXT) -> Utterance:
        """Start hearing an utterance that answers to ``history``; events go to ``emit``."""
        ...

    def announce(self, text: str, emit: Emit) -> Utterance:
        """An utterance of the assistant's own, with no user audio: ``respond`` speaks ``text`` (a timer
        that ended). ``feed`` is never called."""
        ...
