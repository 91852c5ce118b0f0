"""The default turn engine: ASR → LLM token stream → speakable segments → TTS, as typed events.

An utterance's audio goes to a :mod:`recognition <voicebot.turn.recognition>` while the user speaks;
when they finish, the engine gets the final transcript, streams the model's reply and synthesises
each segment as soon as the splitter completes it, while the model keeps writing. Every segment is
emitted whole (``SegmentAudio``): the session's playback paces it to the page, so no audio frame
passes through the session's mailbox. Naive mode (``session.streaming: false``) waits for the whole
reply before any synthesis; it exists to measure what streaming gains.

Stage calls are timed where they run (:class:`~voicebot.turn.timing.StageClock`); a fallback notice
comes back as a ``FallbackUsed`` event through the turn's own view of each stage.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

from voicebot import audio
from voicebot.errors import Stage, StageError
from voicebot.providers.base import Message, Stages
from voicebot.session.protocol import INPUT_SAMPLE_RATE
from voicebot.settings import SessionSettings
from voicebot.turn.events import (
    FallbackUsed,
    NothingHeard,
    ReplyDone,
    ReplyPiece,
    SegmentAudio,
    SpeechDone,
    Transcribed,
    TurnFailed,
)
from voicebot.turn.recognition import Recognition, start_recognition
from voicebot.turn.text import SentenceSplitter, clean_for_speech
from voicebot.turn.timing import Emit, StageClock

S = TypeVar("S")

_NON_SPEECH = re.compile(r"^[\s\[\(*♪]*(blank_audio|music|silence|inaudible|no speech)?[\s\]\)*♪.]*$", re.IGNORECASE)


def is_empty_transcript(text: str) -> bool:
    """Whether ASR output holds no words (empty, punctuation, or a non-speech tag like [BLANK_AUDIO])."""
    return not any(ch.isalnum() for ch in text) or bool(_NON_SPEECH.match(text))


def _notifying(stage: S, notify: Emit) -> S:
    """The turn's own view of a shared stage, reporting fallbacks to this turn (see ``fallback``)."""
    bind = getattr(stage, "notifying", None)
    return stage if bind is None else bind(notify)


class PipelineEngine:
    """Serves every session of a server with one set of stages."""

    def __init__(self, stages: Stages, settings: SessionSettings) -> None:
        self.stages = stages
        self.settings = settings

    def listen(self, history: Sequence[Message], emit: Emit) -> PipelineUtterance:
        return PipelineUtterance(self.stages, self.settings, history, emit)


class PipelineUtterance:
    """One utterance and its reply."""

    def __init__(self, stages: Stages, settings: SessionSettings, history: Sequence[Message], emit: Emit) -> None:
        self._settings = settings
        self._history = list(history)
        self._emit = emit
        seen: set[tuple[Stage, str]] = set()

        def notify(event: object) -> None:  # once per stage and provider in a turn
            if isinstance(event, FallbackUsed) and (event.stage, event.provider) not in seen:
                seen.add((event.stage, event.provider))
                emit(event)

        self._asr = _notifying(stages.asr, notify)
        self._llm = _notifying(stages.llm, notify)
        self._tts = _notifying(stages.tts, notify)
        self._pcm = bytearray()
        self._recognition: Recognition = start_recognition(self._asr, emit)

    def feed(self, pcm: bytes) -> None:
        self._pcm += pcm
        self._recognition.feed(pcm)

    async def aclose(self) -> None:
        await self._recognition.aclose()

    async def respond(self, started: float) -> None:
        clock = StageClock(self._emit, started)
        try:
            transcript = await self._transcribe(clock)
            if transcript is None:
                return
            self._emit(Transcribed(transcript))
            history = [*self._history, Message("user", transcript)]
            if self._settings.streaming:
                await self._reply_streaming(clock, history)
            else:
                await self._reply_naive(clock, history)
            self._emit(SpeechDone())
        except StageError as exc:
            self._emit(TurnFailed(exc.code, exc.message, exc.stage))

    async def _transcribe(self, clock: StageClock) -> str | None:
        pcm = bytes(self._pcm)
        if audio.duration_ms(len(pcm), INPUT_SAMPLE_RATE) < self._settings.min_utterance_ms:
            self._emit(NothingHeard("too_short"))
            return None
        if audio.rms(pcm) < self._settings.silence_rms:
            self._emit(NothingHeard("silence"))
            return None
        try:
            async with clock.call(Stage.ASR):
                text = (await self._recognition.finish(pcm)).strip()
        except Exception as exc:
            raise StageError(Stage.ASR, f"Speech recognition failed: {exc}") from exc
        if is_empty_transcript(text):
            self._emit(NothingHeard("no_words"))
            return None
        return text

    async def _llm_pieces(self, clock: StageClock, history: Sequence[Message]) -> AsyncIterator[str]:
        try:
            async for piece in clock.stream(Stage.LLM, self._llm.stream_reply(history)):
                yield piece
        except Exception as exc:
            raise StageError(Stage.LLM, f"The language model failed: {exc}") from exc

    async def _reply_streaming(self, clock: StageClock, history: Sequence[Message]) -> None:
        segments: asyncio.Queue[str | None] = asyncio.Queue()
        speaker = asyncio.create_task(self._speak(clock, segments))
        splitter = SentenceSplitter()
        pieces: list[str] = []
        try:
            async for piece in self._llm_pieces(clock, history):
                pieces.append(piece)
                self._emit(ReplyPiece(piece))
                for segment in splitter.feed(piece):
                    segments.put_nowait(segment)
                if speaker.done():  # TTS failed: stop the model too
                    break
            for segment in splitter.flush():
                segments.put_nowait(segment)
            segments.put_nowait(None)
            if not speaker.done():
                self._emit(ReplyDone("".join(pieces)))
            await speaker
        finally:
            if not speaker.done():
                speaker.cancel()

    async def _reply_naive(self, clock: StageClock, history: Sequence[Message]) -> None:
        pieces: list[str] = []
        async for piece in self._llm_pieces(clock, history):
            pieces.append(piece)
            self._emit(ReplyPiece(piece))
        reply = "".join(pieces)
        self._emit(ReplyDone(reply))
        segments: asyncio.Queue[str | None] = asyncio.Queue()
        segments.put_nowait(reply)
        segments.put_nowait(None)
        await self._speak(clock, segments)

    async def _speak(self, clock: StageClock, segments: asyncio.Queue[str | None]) -> None:
        """Synthesise segments in order as they arrive; emit each one whole."""
        index = 0
        while (segment := await segments.get()) is not None:
            speakable = clean_for_speech(segment)
            if not speakable:
                continue
            try:
                chunks = [chunk async for chunk in clock.stream(Stage.TTS, self._tts.synthesize(speakable))]
            except Exception as exc:
                raise StageError(Stage.TTS, f"Speech synthesis failed: {exc}") from exc
            self._emit(SegmentAudio(index, segment, b"".join(chunks), self._tts.sample_rate))
            index += 1
