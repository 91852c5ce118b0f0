"""Speech recognition as the turn sees it: audio in while the user speaks, a transcript at the end.

An ASR provider declares what it can do by what it has: one with ``open_stream`` (Moonshine) hears
the audio as it arrives, and :class:`StreamingRecognition` asks it for a partial transcript every
``partial_interval_ms`` of new audio (shown on the page) and for the final one at release, when
little or nothing is left to do. A batch provider (Whisper) only ever sees the whole utterance:
:class:`BatchRecognition` adapts it, doing everything at the end. ``start_recognition`` picks the
adapter for the stage's first provider, so the turn never asks which kind it has. If a stream fails,
the stage's batch path (with its fallback list) transcribes the whole utterance instead.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Protocol

import structlog

from voicebot.providers.base import ASR
from voicebot.providers.health import stage_providers
from voicebot.providers.streaming import ASRStream
from voicebot.session.protocol import INPUT_SAMPLE_RATE
from voicebot.threads import needed_by
from voicebot.turn.events import PartialTranscript
from voicebot.turn.timing import Emit
from voicebot.turn.urgency import Urgency

_log = structlog.get_logger("voicebot.turn")

_NON_SPEECH = re.compile(r"^[\s\[\(*♪]*(blank_audio|music|silence|inaudible|no speech)?[\s\]\)*♪.]*$", re.IGNORECASE)


def is_empty_transcript(text: str) -> bool:
    """Whether ASR output holds no words (empty, punctuation, or a non-speech tag like [BLANK_AUDIO])."""
    return not any(ch.isalnum() for ch in text) or bool(_NON_SPEECH.match(text))


class Recognition(Protocol):
    """Recognition of one utterance."""

    def feed(self, pcm: bytes) -> None:
        """More audio (16 kHz mono s16le) as the user speaks. Cheap: it runs on the session's loop."""
        ...

    async def finish(self, pcm: bytes) -> str:
        """The final transcript; ``pcm`` is the whole utterance (what ``feed`` received, in order)."""
        ...

    async def peek(self, pcm: bytes) -> str:
        """The transcript of everything fed so far (``pcm``), without ending the utterance: for a reply
        prepared while the user pauses. Partial transcripts stop until ``resume``."""
        ...

    def resume(self) -> None:
        """The user spoke again after a ``peek``: partial transcripts go on."""
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

    async def peek(self, pcm: bytes) -> str:
        return await self._asr.transcribe(pcm, INPUT_SAMPLE_RATE)

    def resume(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


#: Partial transcripts of one utterance may keep a core busy at most this share of the time the
#: user speaks. Each pass transcribes everything heard so far, so passes grow with the utterance and
#: with contention; after a pass of ``d`` seconds the next waits for at least ``d / share`` seconds of
#: new audio. Alone, a pass takes 30-60 ms and ``partial_interval_ms`` decides; with four sessions
#: talking, passes every 300 ms took most of a core, and the turns' first audio came up to twice as
#: late (``voicebot bench --sessions 4``: p95 0.8-1.1 s, 0.4 s without partials).
PARTIAL_SHARE = 0.2
#: A partial transcript is only shown: when cores are short, its pass goes after any work that is
#: needed sooner than this (see ``voicebot.threads.Cores``), such as a turn's first audio.
PARTIAL_NEEDED_WITHIN_S = 2.0


class StreamingRecognition:
    """A stream fed while the user speaks, with partial transcripts, never two passes at once, and
    sparser when passes get slow (:data:`PARTIAL_SHARE`). A partial transcript waits while another
    turn is on its way to its first audio (``urgency``): it is only shown, and the next one covers
    the same audio."""

    def __init__(
        self, stream: ASRStream, fallback: ASR, emit: Emit, partial_interval_ms: int, urgency: Urgency | None = None
    ) -> None:
        self._stream = stream
        self._fallback = fallback
        self._emit = emit
        self._urgency = urgency or Urgency()
        self._interval_bytes = INPUT_SAMPLE_RATE * 2 * partial_interval_ms // 1000
        self._next_bytes = self._interval_bytes
        """New audio that wakes the next partial: the interval, or more after a slow pass."""
        self._new_bytes = 0
        self._wake = asyncio.Event()
        self._partials_on = partial_interval_ms > 0
        self._partials = asyncio.create_task(self._partial_loop()) if self._partials_on else None

    def feed(self, pcm: bytes) -> None:
        self._stream.feed(pcm)
        self._new_bytes += len(pcm)
        if self._partials is not None and self._new_bytes >= self._next_bytes:
            self._wake.set()

    async def _partial_loop(self) -> None:
        with needed_by(lambda: time.monotonic() + PARTIAL_NEEDED_WITHIN_S):
            await self._partials_while_fed()

    async def _partials_while_fed(self) -> None:
        shown = ""
        while True:
            await self._wake.wait()
            await self._urgency.calm()
            self._wake.clear()
            self._new_bytes = 0
            started = time.perf_counter()
            try:
                text = (await self._stream.partial()).strip()
            except Exception as exc:  # noqa: BLE001 - partials are a courtesy: the final pass still runs
                _log.warning("partial_transcript_failed", error=str(exc))
                return
            spare_s = (time.perf_counter() - started) / PARTIAL_SHARE
            self._next_bytes = max(self._interval_bytes, round(spare_s * INPUT_SAMPLE_RATE) * 2)
            if text != shown and not is_empty_transcript(text):
                shown = text
                self._emit(PartialTranscript(text))

    async def finish(self, pcm: bytes) -> str:
        self._stop_partials()
        self._partials_on = False
        try:
            return await self._stream.finish()
        except Exception as exc:  # noqa: BLE001 - the stage's batch path (and its fallback list) takes over
            _log.warning("streaming_recognition_failed", error=str(exc))
            return await self._fallback.transcribe(pcm, INPUT_SAMPLE_RATE)

    async def peek(self, pcm: bytes) -> str:
        self._stop_partials()  # the pass below covers everything: no partial competes with the reply
        try:
            return await self._stream.partial()
        except Exception as exc:  # noqa: BLE001 - the stage's batch path (and its fallback list) takes over
            _log.warning("streaming_recognition_failed", error=str(exc))
            return await self._fallback.transcribe(pcm, INPUT_SAMPLE_RATE)

    def resume(self) -> None:
        if self._partials_on and (self._partials is None or self._partials.done()):
            self._partials = asyncio.create_task(self._partial_loop())

    async def aclose(self) -> None:
        self._stop_partials()

    def _stop_partials(self) -> None:
        if self._partials is not None:
            self._partials.cancel()


def start_recognition(
    asr: ASR, emit: Emit, partial_interval_ms: int = 300, urgency: Urgency | None = None
) -> Recognition:
    """The recognition for the stage ``asr``: streaming when its first provider can hear audio as it
    arrives (``open_stream``), batch otherwise."""
    first = stage_providers(asr)[0]
    open_stream = getattr(first, "open_stream", None)
    if open_stream is None:
        return BatchRecognition(asr)
    return StreamingRecognition(open_stream(INPUT_SAMPLE_RATE), asr, emit, partial_interval_ms, urgency)
