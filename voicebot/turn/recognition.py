"""Speech recognition as the turn sees it: audio in while the user speaks, a transcript at the end.

An ASR provider declares what it can do (:class:`~voicebot.providers.base.ASRCapabilities`). A
streaming one hears the audio as it arrives and can report partial transcripts; a batch one (Whisper)
only ever sees the whole utterance, so :class:`BatchRecognition` adapts it: it keeps nothing but
waits for the end (the utterance's audio is kept by the turn). ``start_recognition`` picks the
adapter for a provider, so the turn never asks which kind it has.
"""

from __future__ import annotations

from typing import Protocol

from voicebot.providers.base import ASR
from voicebot.session.protocol import INPUT_SAMPLE_RATE
from voicebot.turn.timing import Emit


class Recognition(Protocol):
    """Recognition of one utterance."""

    def feed(self, pcm: bytes) -> None:
        """More audio (16 kHz mono s16le) as the user speaks."""
        ...

    async def finish(self, pcm: bytes) -> str:
        """The final transcript; ``pcm`` is the whole utterance (what ``feed`` received, in order)."""
        ...

    async def aclose(self) -> None:
        """Stop whatever runs in the background for this utterance."""
        ...


class BatchRecognition:
    """A batch engine made to look like a streaming one: everything happens in ``finish``."""

    def __init__(self, asr: ASR) -> None:
        self._asr = asr

    def feed(self, pcm: bytes) -> None:
        pass  # the turn keeps the utterance; a batch engine sees it whole at the end

    async def finish(self, pcm: bytes) -> str:
        return await self._asr.transcribe(pcm, INPUT_SAMPLE_RATE)

    async def aclose(self) -> None:
        pass


def start_recognition(asr: ASR, emit: Emit) -> Recognition:
    """The recognition for ``asr``, reporting partial transcripts (if it makes any) to ``emit``."""
    return BatchRecognition(asr)
