"""Fake providers for timing and fault injection only (slow stages, failures at a chosen point).
Behaviour that depends on the real models is tested with the embedded models, not with these."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

from voicebot.providers.base import NO_OPTIONS, Message, ReplyOptions


class InjectedFailure(RuntimeError):
    """The failure a fake was told to raise."""


@dataclass
class FakeASR:
    text: str = "hello there"
    delay_s: float = 0.0
    fail: bool = False
    name: str = "fake_asr"
    model: str = "fake"
    calls: int = 0

    def warm(self) -> None:
        pass

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        self.calls += 1
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise InjectedFailure("fake ASR failed")
        return self.text


@dataclass
class FakeLLM:
    pieces: Sequence[str] = ("Hello! ", "This is ", "a fake ", "reply.")
    delay_s: float = 0.0
    fail_after: int | None = None
    """Raise after this many pieces (0: before the first)."""
    name: str = "fake_llm"
    model: str = "fake"
    seen: list[list[Message]] = field(default_factory=list)
    options: list[ReplyOptions] = field(default_factory=list)
    cancelled: int = 0
    remember: bool = True
    """Keep what each call was given in ``seen`` and ``options``. A soak of a thousand turns turns it
    off: a call's options reach its whole turn (the tools' emit, the session's turn record)."""

    def warm(self) -> None:
        pass

    async def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        if self.remember:
            self.seen.append(list(history))
            self.options.append(options)
        try:
            for index, piece in enumerate(self.pieces):
                if self.fail_after is not None and index >= self.fail_after:
                    raise InjectedFailure("fake LLM failed")
                await asyncio.sleep(self.delay_s)
                yield piece
            if self.fail_after is not None and self.fail_after >= len(self.pieces):
                raise InjectedFailure("fake LLM failed")
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled += 1
            raise


@dataclass
class FakeTTS:
    """Speaks ``ms_per_char`` of a quiet tone per character (short by default: tests wait for replies
    to be heard; tests about durations set it), in chunks of ``chunk_ms``."""

    sample_rate: int = 16_000
    ms_per_char: float = 5.0
    chunk_ms: int = 200
    delay_s: float = 0.0
    fail: bool = False
    name: str = "fake_tts"
    model: str = "fake"
    spoken: list[str] = field(default_factory=list)

    def warm(self) -> None:
        pass

    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        self.spoken.append(text)
        if self.fail:
            raise InjectedFailure("fake TTS failed")
        total = int(len(text) * self.ms_per_char * self.sample_rate / 1000)
        chunk = int(self.chunk_ms * self.sample_rate / 1000)
        for start in range(0, total, chunk):
            await asyncio.sleep(self.delay_s)
            yield b"\x10\x00" * min(chunk, total - start)


class ScriptedClock:
    """A clock that only moves when told. With ``auto_advance`` a sleep on it returns at once, having
    moved the time on (pacing code runs without waiting); without, a sleeper wakes only when the test
    calls ``advance`` past its deadline (the test plays the passing of time)."""

    def __init__(self, start: float = 1000.0, auto_advance: bool = True) -> None:
        self.now = start
        self.auto_advance = auto_advance
        self.slept: list[float] = []
        self._moved = asyncio.Event()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self._moved.set()

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        deadline = self.now + seconds
        if self.auto_advance:
            self.now = deadline
        while self.now < deadline:
            self._moved.clear()
            await self._moved.wait()
        await asyncio.sleep(0)
