"""One turn of the conversation: ASR → LLM token stream → speakable segments → TTS audio stream.

The turn runs in its own task and reports everything it produces as :data:`TurnEvent` values through
``emit``; it never touches the socket or the state machine. The session owns both, so a cancelled
turn (barge-in) simply stops emitting, and anything it emitted late is dropped by turn id.

In streaming mode the LLM and TTS run side by side: each segment is synthesised as soon as the
splitter completes it, while the model keeps writing. Naive mode (``session.streaming: false``)
waits for the whole reply before any synthesis; it exists to measure what streaming gains.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from voicebot import audio
from voicebot.errors import Stage, StageError
from voicebot.protocol import INPUT_SAMPLE_RATE
from voicebot.providers import fallback
from voicebot.providers.base import Message, Stages
from voicebot.providers.fallback import FallbackNotice
from voicebot.settings import SessionSettings
from voicebot.text import SentenceSplitter, clean_for_speech


@dataclass(frozen=True)
class Transcribed:
    text: str


@dataclass(frozen=True)
class NothingHeard:
    """The utterance held no speech (too short, too quiet, or ASR found no words)."""

    why: str


@dataclass(frozen=True)
class ReplyPiece:
    text: str


@dataclass(frozen=True)
class ReplyDone:
    text: str


@dataclass(frozen=True)
class SpeechAudio:
    """A chunk of reply audio (PCM s16le at ``sample_rate``) that speaks part of ``segment``."""

    pcm: bytes
    sample_rate: int
    segment_index: int
    segment: str


@dataclass(frozen=True)
class SpeechDone:
    """The last reply audio was emitted (the user may still be hearing it)."""


@dataclass(frozen=True)
class TurnFailed:
    error: StageError


@dataclass(frozen=True)
class TurnFinished:
    """All text and audio of the turn was emitted. ``timings`` holds stage durations in ms."""

    timings: dict[str, float] = field(default_factory=dict)


#: How long after the estimated end of playback a turn still counts as speaking: the page starts
#: playing a little after the first frame leaves the server.
PLAYBACK_SLACK_MS = 250

TurnEvent = (
    Transcribed
    | NothingHeard
    | ReplyPiece
    | ReplyDone
    | SpeechAudio
    | SpeechDone
    | TurnFailed
    | TurnFinished
    | FallbackNotice
)

_NON_SPEECH = re.compile(r"^[\s\[\(*♪]*(blank_audio|music|silence|inaudible|no speech)?[\s\]\)*♪.]*$", re.IGNORECASE)


def is_empty_transcript(text: str) -> bool:
    """Whether ASR output holds no words (empty, punctuation, or a non-speech tag like [BLANK_AUDIO])."""
    return not any(ch.isalnum() for ch in text) or bool(_NON_SPEECH.match(text))


class Turn:
    """Runs one turn. Create one per utterance; ``run`` emits events until the turn ends."""

    def __init__(
        self,
        stages: Stages,
        settings: SessionSettings,
        history: Sequence[Message],
        emit: Callable[[TurnEvent], None],
        realtime: bool = True,
    ) -> None:
        """``realtime=False`` emits audio as fast as it is made and ends the turn at once (for replay,
        where nobody listens); a live session paces audio to playback."""
        self._realtime = realtime
        self._stages = stages
        self._settings = settings
        self._history = list(history)
        self._emit = emit
        self.timings: dict[str, float] = {}
        self._playback_started: float | None = None
        self._audio_sent_ms = 0.0

    async def run(self, pcm: bytes) -> None:
        """Run the turn for ``pcm`` (16 kHz mono s16le). Failures become a ``TurnFailed`` event."""
        fallback.listen(self._emit)  # a provider other than a stage's first answered: tell the session
        try:
            transcript = await self._transcribe(pcm)
            if transcript is None:
                return
            self._emit(Transcribed(transcript))
            history = [*self._history, Message("user", transcript)]
            if self._settings.streaming:
                await self._reply_streaming(history)
            else:
                await self._reply_naive(history)
            await self._wait_for_playback()
            self._emit(TurnFinished(dict(self.timings)))
        except StageError as exc:
            self._emit(TurnFailed(exc))

    async def _transcribe(self, pcm: bytes) -> str | None:
        length_ms = audio.duration_ms(len(pcm), INPUT_SAMPLE_RATE)
        if length_ms < self._settings.min_utterance_ms:
            self._emit(NothingHeard("too_short"))
            return None
        if audio.rms(pcm) < self._settings.silence_rms:
            self._emit(NothingHeard("silence"))
            return None
        started = time.perf_counter()
        try:
            text = (await self._stages.asr.transcribe(pcm, INPUT_SAMPLE_RATE)).strip()
        except Exception as exc:
            raise StageError(Stage.ASR, f"Speech recognition failed: {exc}") from exc
        self.timings["asr_ms"] = (time.perf_counter() - started) * 1000
        if is_empty_transcript(text):
            self._emit(NothingHeard("no_words"))
            return None
        return text

    async def _reply_streaming(self, history: Sequence[Message]) -> None:
        segments: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak_segments(segments))
        splitter = SentenceSplitter()
        pieces: list[str] = []
        started = time.perf_counter()
        try:
            async for piece in self._llm_pieces(history):
                if not pieces:
                    self.timings["llm_first_token_ms"] = (time.perf_counter() - started) * 1000
                pieces.append(piece)
                self._emit(ReplyPiece(piece))
                for segment in splitter.feed(piece):
                    segments.put_nowait(segment)
                if speaker.done():  # TTS failed: stop the model too
                    break
            self.timings["llm_ms"] = (time.perf_counter() - started) * 1000
            for segment in splitter.flush():
                segments.put_nowait(segment)
            segments.put_nowait(None)
            if not speaker.done():
                self._emit(ReplyDone("".join(pieces)))
            await speaker
        finally:
            if not speaker.done():
                speaker.cancel()

    async def _reply_naive(self, history: Sequence[Message]) -> None:
        started = time.perf_counter()
        pieces: list[str] = []
        async for piece in self._llm_pieces(history):
            pieces.append(piece)
            self._emit(ReplyPiece(piece))
        self.timings["llm_ms"] = (time.perf_counter() - started) * 1000
        reply = "".join(pieces)
        self._emit(ReplyDone(reply))
        segments: asyncio.Queue[str | None] = asyncio.Queue()
        segments.put_nowait(reply)
        segments.put_nowait(None)
        await self._speak_segments(segments, whole=True)

    async def _llm_pieces(self, history: Sequence[Message]) -> AsyncIterator[str]:
        try:
            async for piece in self._stages.llm.stream_reply(history):
                yield piece
        except Exception as exc:
            raise StageError(Stage.LLM, f"The language model failed: {exc}") from exc

    async def _speak_segments(self, segments: asyncio.Queue[str | None], whole: bool = False) -> None:
        """Synthesise segments in order as they arrive. ``whole``: collect all audio before emitting."""
        tts = self._stages.tts
        index = 0
        started = time.perf_counter()
        held: list[SpeechAudio] = []
        while (segment := await segments.get()) is not None:
            speakable = clean_for_speech(segment)
            if not speakable:
                continue
            try:
                async for pcm in tts.synthesize(speakable):
                    if "tts_first_audio_ms" not in self.timings:
                        self.timings["tts_first_audio_ms"] = (time.perf_counter() - started) * 1000
                    chunk = SpeechAudio(pcm, tts.sample_rate, index, segment)
                    if whole:
                        held.append(chunk)
                    else:
                        await self._play(chunk)
            except Exception as exc:
                raise StageError(Stage.TTS, f"Speech synthesis failed: {exc}") from exc
            index += 1
        for chunk in held:
            await self._play(chunk)
        self.timings["tts_ms"] = (time.perf_counter() - started) * 1000
        self._emit(SpeechDone())

    async def _play(self, chunk: SpeechAudio) -> None:
        """Emit ``chunk`` as frames of ``audio_frame_ms``, never more than ``audio_lead_ms`` ahead of
        real-time playback. The page plays what it gets at once, so pacing keeps the turn alive while
        the user is still hearing it: a barge-in cancels audio not yet sent, and the turn ends when
        playback does (see :meth:`_wait_for_playback`)."""
        lead_ms = self._settings.audio_lead_ms
        for frame in audio.frames(chunk.pcm, chunk.sample_rate, self._settings.audio_frame_ms):
            if self._playback_started is None:
                self._playback_started = time.monotonic()
            ahead_ms = self._audio_sent_ms - (time.monotonic() - self._playback_started) * 1000
            if self._realtime and ahead_ms > lead_ms:
                await asyncio.sleep((ahead_ms - lead_ms) / 1000)
            self._emit(SpeechAudio(frame, chunk.sample_rate, chunk.segment_index, chunk.segment))
            self._audio_sent_ms += audio.duration_ms(len(frame), chunk.sample_rate)

    async def _wait_for_playback(self) -> None:
        """Wait until the page has had time to play all audio sent (plus a little slack)."""
        if self._playback_started is None or not self._realtime:
            return
        remaining_ms = self._audio_sent_ms - (time.monotonic() - self._playback_started) * 1000
        if remaining_ms > 0:
            await asyncio.sleep((remaining_ms + PLAYBACK_SLACK_MS) / 1000)
