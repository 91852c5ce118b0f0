"""Stage timing, measured once: a clock that times each stage call where it runs and emits it as
``StageStarted`` / ``StageEnded`` events, and the turn's summary derived from those events.

Nothing else measures stages: the session's log line, the page's ``metrics`` message, the recording
and replay all read :class:`TurnTimings`, which only looks at events.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from voicebot.errors import Stage
from voicebot.turn.events import AudioStarted, EarlyReply, SegmentAudio, StageEnded, StageStarted, TurnEvent

T = TypeVar("T")

Emit = Callable[[TurnEvent], None]


def _error_name(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, GeneratorExit | asyncio.CancelledError) else type(exc).__name__


class StageClock:
    """Times the stage calls of one turn from ``started`` (a ``time.perf_counter()`` value: the moment
    the user released the button) and emits each call's start and end."""

    def __init__(self, emit: Emit, started: float | None = None, now: Callable[[], float] = time.perf_counter):
        self._emit = emit
        self._now = now
        self.started = now() if started is None else started
        self._calls: dict[Stage, int] = {}

    def now_ms(self) -> float:
        return (self._now() - self.started) * 1000

    @asynccontextmanager
    async def call(self, stage: Stage) -> AsyncIterator[StageCall]:
        """Time one call: ``async with clock.call(Stage.ASR) as call: …``; ``call.first()`` marks its
        first output."""
        number = self._calls[stage] = self._calls.get(stage, 0) + 1
        current = StageCall(self, stage, number, self.now_ms())
        self._emit(StageStarted(stage, number, round(current.started_ms, 1)))
        error: str | None = None
        try:
            yield current
        except BaseException as exc:
            error = _error_name(exc)
            raise
        finally:
            at = self.now_ms()
            first = None if current.first_at_ms is None else current.first_at_ms - current.started_ms
            self._emit(StageEnded(stage, number, at, at - current.started_ms, first, error))

    async def stream(self, stage: Stage, items: AsyncIterator[T]) -> AsyncIterator[T]:
        """``items`` timed as one call of ``stage``, its first item marking the first output."""
        async with self.call(stage) as current:
            try:
                async for item in items:
                    current.first()
                    yield item
            finally:
                close = getattr(items, "aclose", None)
                if close is not None:
                    await close()


@dataclass
class StageCall:
    clock: StageClock
    stage: Stage
    number: int
    started_ms: float
    first_at_ms: float | None = None

    def first(self) -> None:
        """The call produced its first output (only the first mark counts)."""
        if self.first_at_ms is None:
            self.first_at_ms = self.clock.now_ms()


@dataclass
class TurnTimings:
    """The turn's summary in ms, derived from its events (feed every event with ``add``, with the
    time it was emitted in ms since the turn started).

    ``asr_ms``: the final recognition call; ``llm_first_token_ms`` and ``llm_ms``: the model's first
    call; ``first_segment_ms``: when the first spoken segment was synthesised; ``tts_first_audio_ms``:
    the first synthesis call's time to audio; ``tts_ms``: all synthesis calls together;
    ``first_audio_ms``: release to the first reply audio leaving the server; ``early_lead_ms``: how
    long before the end of the turn was decided the reply started being prepared (hands-free).
    """

    values: dict[str, float] = field(default_factory=dict)

    def add(self, event: TurnEvent, at_ms: float) -> None:
        values = self.values
        if isinstance(event, StageEnded) and event.error is None:
            if event.stage is Stage.ASR:
                values["asr_ms"] = event.duration_ms
            elif event.stage is Stage.LLM and event.call == 1:
                values["llm_ms"] = event.duration_ms
                if event.first_ms is not None:
                    values["llm_first_token_ms"] = event.first_ms
            elif event.stage is Stage.TTS:
                values["tts_ms"] = values.get("tts_ms", 0.0) + event.duration_ms
                if event.call == 1 and event.first_ms is not None:
                    values["tts_first_audio_ms"] = event.first_ms
        elif isinstance(event, SegmentAudio) and "first_segment_ms" not in values:
            values["first_segment_ms"] = at_ms
        elif isinstance(event, EarlyReply):
            values["early_lead_ms"] = event.lead_ms
        elif isinstance(event, AudioStarted) and "first_audio_ms" not in values:
            values["first_audio_ms"] = at_ms

    def rounded(self) -> dict[str, float]:
        return {key: round(value, 1) for key, value in self.values.items()}
