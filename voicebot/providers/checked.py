"""Provider output checked at the border: a provider that returns garbage (a transcript that is not
text, reply pieces that are not strings, audio that is not bytes) fails its turn like a provider that
raises, instead of sending ``null`` to the page or crashing the playback mid-reply.

Audio chunks that end in the middle of a 16-bit sample are legal on the wire of some services; the
odd byte is carried over to the next chunk so every chunk passed on holds whole samples.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from voicebot.audio import SAMPLE_WIDTH
from voicebot.providers.base import ASR, LLM, NO_OPTIONS, TTS, Message, ReplyOptions, Stages


class GarbageOutput(TypeError):
    """A provider returned something that is not what its protocol promises."""


def _garbage(provider: Any, what: str, got: object) -> GarbageOutput:
    return GarbageOutput(f"{provider.name} returned {what} of type {type(got).__name__}")


class _Checked:
    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:  # name, model, sample_rate, warm…
        return getattr(self._inner, name)

    def notifying(self, notify: Any) -> Any:
        """The fallback wrappers' per-turn copy (see voicebot.turn.pipeline), still checked."""
        bind = getattr(self._inner, "notifying", None)
        return self if bind is None else type(self)(bind(notify))


class CheckedASR(_Checked):
    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        text = await self._inner.transcribe(pcm, sample_rate)
        if not isinstance(text, str):
            raise _garbage(self._inner, "a transcript", text)
        return text


class CheckedLLM(_Checked):
    async def stream_reply(self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS) -> AsyncIterator[str]:
        async for piece in self._inner.stream_reply(history, options):
            if not isinstance(piece, str):
                raise _garbage(self._inner, "a reply piece", piece)
            yield piece


class CheckedTTS(_Checked):
    async def synthesize(self, text: str) -> AsyncIterator[bytes]:
        carry = b""
        async for chunk in self._inner.synthesize(text):
            if not isinstance(chunk, bytes | bytearray | memoryview):
                raise _garbage(self._inner, "audio", chunk)
            data = carry + bytes(chunk)
            whole = len(data) - len(data) % SAMPLE_WIDTH
            carry = data[whole:]
            if whole:
                yield data[:whole]


def checked(stages: Stages) -> Stages:
    """``stages`` with every output type-checked (see the module docstring)."""
    asr: Any = CheckedASR(stages.asr)
    llm: Any = CheckedLLM(stages.llm)
    tts: Any = CheckedTTS(stages.tts)
    wrapped: tuple[ASR, LLM, TTS] = (asr, llm, tts)
    return Stages(*wrapped)
