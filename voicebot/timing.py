"""Stage timing: a turn's providers wrapped so that each call reports its start and its end.

The session gives each turn a :func:`timed_stages` view of the shared providers. Every ASR, LLM and TTS
call then reports a :class:`StageMark` when it starts and when it ends (with its duration, the time to
its first output, and the error if it failed), in milliseconds since the turn started. The session
logs them and the recording keeps them, which is what the replay timeline draws. The pipeline itself
is unchanged: it sees providers that behave exactly like the real ones.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from voicebot.errors import Stage
from voicebot.providers.base import ASR, LLM, TTS, Message, Stages


@dataclass(frozen=True)
class StageMark:
    """A stage call started (``ended`` false) or ended (``ended`` true)."""

    stage: Stage
    call: int
    """Which call of this stage in the turn (TTS is called once per spoken segment), from 1."""
    ended: bool
    at_ms: float
    """When it happened, in ms since the turn started (the user released the button)."""
    duration_ms: float | None = None
    """For an end: how long the call took."""
    first_ms: float | None = None
    """For an end: ms from the call's start to its first output (LLM token, TTS audio), if any."""
    error: str | None = None
    """For an end: why the call did not complete (exception type, or ``cancelled``)."""

    def fields(self) -> dict[str, Any]:
        """The mark as log fields (rounded to 0.1 ms, ``None`` left out)."""
        values = {
            "stage": self.stage.value,
            "call": self.call,
            "at_ms": round(self.at_ms, 1),
            "duration_ms": None if self.duration_ms is None else round(self.duration_ms, 1),
            "first_ms": None if self.first_ms is None else round(self.first_ms, 1),
            "error": self.error,
        }
        return {key: value for key, value in values.items() if value is not None}


MarkSink = Callable[[StageMark], None]


class _Clock:
    def __init__(self, report: MarkSink, started: float | None) -> None:
        self.report = report
        self.started = time.perf_counter() if started is None else started
        self.calls: dict[Stage, int] = {}

    def now_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def start(self, stage: Stage) -> tuple[int, float]:
        call = self.calls[stage] = self.calls.get(stage, 0) + 1
        at = self.now_ms()
        self.report(StageMark(stage, call, ended=False, at_ms=at))
        return call, at

    def end(self, stage: Stage, call: int, started_ms: float, first_ms: float | None, error: str | None) -> None:
        at = self.now_ms()
        self.report(StageMark(stage, call, True, at, at - started_ms, first_ms, error))


def _error_name(exc: BaseException) -> str:
    return "cancelled" if isinstance(exc, GeneratorExit | asyncio.CancelledError) else type(exc).__name__


class _Forward:
    """Forwards attributes the pipeline does not time (``warm``, provider extras) to the real provider."""

    def __init__(self, inner: Any, clock: _Clock) -> None:
        self._inner = inner
        self._clock = clock
        self.name: str = inner.name
        self.model: str = inner.model

    def warm(self) -> None:
        self._inner.warm()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _TimedASR(_Forward):
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        call, started = self._clock.start(Stage.ASR)
        error: str | None = None
        try:
            text: str = await self._inner.transcribe(pcm, sample_rate)
            return text
        except BaseException as exc:
            error = _error_name(exc)
            raise
        finally:
            self._clock.end(Stage.ASR, call, started, None, error)


class _TimedLLM(_Forward):
    async def stream_reply(self, history: Sequence[Message]) -> AsyncIterator[str]:
        call, started = self._clock.start(Stage.LLM)
        first: float | None = None
        error: str | None = None
        pieces = self._inner.stream_reply(history)
        try:
            async for piece in pieces:
                if first is None:
                    first = self._clock.now_ms() - started
                yield piece
        except BaseException as exc:
            error = _error_name(exc)
            raise
        finally:
            self._clock.end(Stage.LLM, call, started, first, error)
            close = getattr(pieces, "aclose", None)
            if close is not None and error is not None:
                await close()


class _TimedTTS(_Forward):
    def __init__(self, inner: TTS, clock: _Clock) -> None:
        super().__init__(inner, clock)
        self.sample_rate: int = inner.sample_rate

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        call, started = self._clock.start(Stage.TTS)
        first: float | None = None
        error: str | None = None
        chunks = self._inner.synthesize(text)
        try:
            async for chunk in chunks:
                if first is None:
                    first = self._clock.now_ms() - started
                yield chunk
        except BaseException as exc:
            error = _error_name(exc)
            raise
        finally:
            self._clock.end(Stage.TTS, call, started, first, error)
            close = getattr(chunks, "aclose", None)
            if close is not None and error is not None:
                await close()


def timed_stages(stages: Stages, report: MarkSink, started: float | None = None) -> Stages:
    """``stages`` with every call reported to ``report`` as :class:`StageMark` values, timed from
    ``started`` (a ``time.perf_counter()`` value; default: now)."""
    clock = _Clock(report, started)
    asr: ASR = _TimedASR(stages.asr, clock)
    llm: LLM = _TimedLLM(stages.llm, clock)
    tts: TTS = _TimedTTS(stages.tts, clock)
    return Stages(asr=asr, llm=llm, tts=tts)
