"""What a turn came to, read from its events: the one summary that the recording's reader, replay
and the benchmark share (the page's view comes from the wire, see :mod:`voicebot.client`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from voicebot.turn.events import (
    Interrupted,
    NothingHeard,
    ReplyDone,
    StageEnded,
    StageStarted,
    ToolReturned,
    Transcribed,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    event_fields,
)
from voicebot.turn.timing import TurnTimings


@dataclass(kw_only=True)
class TurnOutcome:
    """A turn's transcript, reply, interruption, error, timings and stage calls."""

    transcript: str | None = None
    nothing_heard: str | None = None
    """Why the utterance was taken as no speech (``too_short``, ``silence``, ``no_words``)."""
    reply: str | None = None
    heard: str | None = None
    """With a barge-in: what of the reply stayed in the conversation."""
    played_ms: int | None = None
    interrupted: bool = False
    error: str | None = None
    """The error code the turn failed with."""
    finished: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    marks: list[dict[str, Any]] = field(default_factory=list)
    """Every stage call's start and end, as ``{"event": "stage_started" | "stage_ended", …}``."""
    tools: list[dict[str, Any]] = field(default_factory=list)
    """Every tool call's result, in order (``name``, ``ok``, ``text``, ``spoken``, ``data``…)."""
    _derived: TurnTimings = field(default_factory=TurnTimings, repr=False)

    def add(self, event: TurnEvent, at_ms: float | None = None) -> None:
        """Take one event (``at_ms``: when it happened, in ms since the turn started)."""
        if at_ms is not None:
            self._derived.add(event, at_ms)
            if not self.finished:
                self.timings = self._derived.rounded()
        if isinstance(event, Transcribed):
            self.transcript = event.text
        elif isinstance(event, NothingHeard):
            self.nothing_heard = event.why
        elif isinstance(event, ReplyDone):
            self.reply = event.text
        elif isinstance(event, Interrupted):
            self.interrupted, self.heard, self.played_ms = True, event.heard, event.played_ms
        elif isinstance(event, TurnFailed):
            self.error = event.code
        elif isinstance(event, TurnFinished):
            self.finished, self.timings = True, dict(event.timings)
        elif isinstance(event, ToolReturned):
            fields = event_fields(event)
            fields.pop("type")
            self.tools.append(fields)
        elif isinstance(event, StageStarted | StageEnded):
            fields = event_fields(event)
            self.marks.append({"event": fields.pop("type"), **fields})

    @property
    def outcome(self) -> str:
        """finished, interrupted, nothing_heard, failed, or incomplete (disconnect, crash, reset)."""
        if self.interrupted:
            return "interrupted"
        if self.error is not None:
            return "failed"
        if self.nothing_heard is not None:
            return "nothing_heard"
        if self.finished:
            return "finished"
        return "incomplete"
