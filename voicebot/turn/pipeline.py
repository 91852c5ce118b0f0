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
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TypeVar

from voicebot import audio
from voicebot.errors import Stage, StageError
from voicebot.providers.base import LLM, TTS, Message, ReplyOptions, Stages
from voicebot.providers.health import stage_providers
from voicebot.session.protocol import INPUT_SAMPLE_RATE
from voicebot.settings import SessionSettings
from voicebot.threads import needed_by
from voicebot.tools.builtins import clock_prompt
from voicebot.tools.intents import IntentMatch
from voicebot.turn.engine import NO_CONTEXT, TurnContext
from voicebot.turn.events import (
    EarlyReply,
    FallbackUsed,
    NothingHeard,
    PartialTranscript,
    ReplyDone,
    ReplyPiece,
    SegmentAudio,
    SpeechDone,
    StageEnded,
    StageStarted,
    Transcribed,
    TurnEvent,
    TurnFailed,
)
from voicebot.turn.recognition import Recognition, is_empty_transcript, start_recognition
from voicebot.turn.text import SentenceSplitter, clean_for_speech, split_sentences
from voicebot.turn.timing import Emit, StageClock
from voicebot.turn.tools import Toolbox, TurnTools
from voicebot.turn.urgency import ReplyLead, Urgency

S = TypeVar("S")


def _notifying(stage: S, notify: Emit) -> S:
    """The turn's own view of a shared stage, reporting fallbacks to this turn (see ``fallback``)."""
    bind = getattr(stage, "notifying", None)
    return stage if bind is None else bind(notify)


class PipelineEngine:
    """Serves every session of a server with one set of stages (and, when tools are on, one toolbox)."""

    def __init__(
        self,
        stages: Stages,
        settings: SessionSettings,
        toolbox: Toolbox | None = None,
        partial_interval_ms: int = 300,
    ) -> None:
        """``partial_interval_ms``: with a streaming recogniser, new audio between partial transcripts
        (``asr.partial_interval_ms``)."""
        self.stages = stages
        self.settings = settings
        self.toolbox = toolbox
        self.partial_interval_ms = partial_interval_ms
        self.urgency = Urgency()
        """Which of this engine's turns are waiting for their first audio (see :mod:`~voicebot.turn.urgency`)."""

    def listen(self, history: Sequence[Message], emit: Emit, context: TurnContext = NO_CONTEXT) -> PipelineUtterance:
        return PipelineUtterance(self, history, emit, context)

    def announce(self, text: str, emit: Emit) -> Announcement:
        return Announcement(_notifying(self.stages.tts, emit), text, emit, self.lead())

    def lead(self) -> ReplyLead:
        """A new reply's lead over its listener, which decides when its work may wait."""
        return ReplyLead(self.urgency, self.settings.wait_ahead_ms)


class _Speaker:
    """Synthesises segments in order as they are said, each one whole, in its own task. A segment
    whose audio is not needed yet waits while another turn presses (see ``urgency``);
    ``on_first_audio`` is called when the first segment is handed over."""

    def __init__(
        self,
        tts: TTS,
        emit: Emit,
        clock: StageClock,
        lead: ReplyLead,
        on_first_audio: Callable[[], None] = lambda: None,
    ) -> None:
        self._tts = tts
        self._emit = emit
        self._clock = clock
        self.lead = lead
        self._on_first_audio = on_first_audio
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._index = 0
        self._task = asyncio.create_task(self._run())

    def say(self, text: str) -> None:
        self._queue.put_nowait(text)

    @property
    def stopped(self) -> bool:
        """The speaker ended: all said was synthesised, or synthesis failed (the error comes out of
        ``finish``)."""
        return self._task.done()

    async def finish(self) -> None:
        """Wait until everything said is synthesised; raise the speaker's error, if any."""
        self._queue.put_nowait(None)
        await self._task

    def close(self) -> None:
        """Stop synthesising (the turn ended another way); an error nobody awaited is dropped."""
        if not self._task.done():
            self._task.cancel()
        elif not self._task.cancelled():
            self._task.exception()

    async def _run(self) -> None:
        while (segment := await self._queue.get()) is not None:
            speakable = clean_for_speech(segment)
            if not speakable:
                continue
            await self.lead.until_needed()
            try:
                chunks = [chunk async for chunk in self._clock.stream(Stage.TTS, self._tts.synthesize(speakable))]
            except Exception as exc:
                raise StageError(Stage.TTS, f"Speech synthesis failed: {exc}") from exc
            pcm = b"".join(chunks)
            self._emit(SegmentAudio(self._index, segment, pcm, self._tts.sample_rate))
            self.lead.add(audio.duration_ms(len(pcm), self._tts.sample_rate))
            if self._index == 0:
                self._on_first_audio()
            self._index += 1


class _HeldEvents:
    """The events of a reply prepared early: held while the user may still go on; at the end of the
    turn an ``EarlyReply`` and everything held is passed on (stage times shifted to count from the
    end, so they are negative), and later events go straight through."""

    def __init__(self) -> None:
        self.prepared_at = time.perf_counter()
        self.released = asyncio.Event()
        """Set once released: what only the decided turn may do (run a tool) waits for it."""
        self._held: list[TurnEvent] = []
        self._target: Emit | None = None

    def __call__(self, event: TurnEvent) -> None:
        if self._target is None:
            self._held.append(event)
        else:
            self._target(event)

    def release(self, target: Emit, started: float) -> None:
        lead_ms = (started - self.prepared_at) * 1000
        target(EarlyReply(round(lead_ms, 1)))
        for event in self._held:
            if isinstance(event, StageStarted | StageEnded):
                event = dataclasses.replace(event, at_ms=event.at_ms - lead_ms)
            target(event)
        self._held.clear()
        self._target = target
        self.released.set()


#: The conversation so far is read into the model's cache while the user speaks. Nobody waits for it
#: yet: it is always needed this long from now, so it goes after every turn's first audio and every
#: reply that would otherwise fall silent, and runs while nothing else is needed (see
#: ``voicebot.threads.Cores`` and ``voicebot.providers.llama_batch``). If it is not done when the
#: reply starts, the reply reads the rest.
READ_AHEAD_WITHIN_S = 1.0


class _ReadAhead:
    """The conversation read into the model's cache while the user speaks (if the stage's first
    provider can: the embedded model): the history when the turn opens, then the user's words as
    partial transcripts come in, all but the last word (which may still change). The reply then reads
    only what differs from the last of them (the last word or two, and the tokens that close the
    message) instead of the whole question, at the moment other turns may wait for the model too.
    The reply is the same either way: see ``voicebot.providers.llama_batch``."""

    def __init__(self, llm: LLM, history: Sequence[Message], note: str) -> None:
        self._read = getattr(stage_providers(llm)[0], "read_ahead", None)
        self._history = list(history)
        self._note = note
        self._words = ""
        self._stop: Callable[[], None] = lambda: None
        self._reading = self._read is not None
        self._start(self._history, unfinished=False)

    def _start(self, messages: list[Message], unfinished: bool) -> None:
        if self._read is None or not self._reading:
            return
        self._stop()  # the newer reading supersedes it (and goes on from what it read)
        options = ReplyOptions(self._note, needed_by=lambda: time.monotonic() + READ_AHEAD_WITHIN_S)
        self._stop = self._read(messages, options, unfinished=unfinished)

    def words(self, partial: str) -> None:
        """The user's words so far: read all but the last."""
        head = partial.strip().rpartition(" ")[0].strip()
        if head and head != self._words:
            self._words = head
            self._start([*self._history, Message("user", head)], unfinished=True)

    def stop(self) -> None:
        """A reply begins (it reads whatever is not in the cache yet), or the turn ends."""
        self._stop()
        self._reading = False

    def allow(self) -> None:
        """The user went on speaking after a reply was begun early: read their words again."""
        self._reading = self._read is not None


class PipelineUtterance:
    """One utterance and its reply.

    In hands-free mode the reply may be prepared early (``expect_end``): the same steps run from the
    audio heard so far, their events held (see :class:`_HeldEvents`), and no tool runs, until
    ``respond`` lets them out or ``resume`` (the user went on) cancels them. Since the user was silent
    in between, the transcript is the one the end would give.
    """

    def __init__(self, engine: PipelineEngine, history: Sequence[Message], emit: Emit, context: TurnContext) -> None:
        self._engine = engine
        self._settings = engine.settings
        self._toolbox = engine.toolbox
        self._context = context
        self._history = list(history)
        self._emit = emit
        self._early: tuple[_HeldEvents, asyncio.Task[None]] | None = None
        seen: set[tuple[Stage, str]] = set()

        def notify(event: object) -> None:  # once per stage and provider in a turn
            if isinstance(event, FallbackUsed) and (event.stage, event.provider) not in seen:
                seen.add((event.stage, event.provider))
                (self._early[0] if self._early is not None else emit)(event)

        stages = engine.stages
        self._asr = _notifying(stages.asr, notify)
        self._llm = _notifying(stages.llm, notify)
        self._tts = _notifying(stages.tts, notify)
        self._pcm = bytearray()
        self._reading = _ReadAhead(stages.llm, self._history, self._note())

        def heard(event: TurnEvent) -> None:
            emit(event)
            if isinstance(event, PartialTranscript):
                self._reading.words(event.text)

        self._recognition: Recognition = start_recognition(self._asr, heard, engine.partial_interval_ms, engine.urgency)

    def _note(self) -> str:
        """The system prompt's note for this turn: the user's date and time."""
        return clock_prompt(self._context.tools) if self._context.tools is not None else ""

    def feed(self, pcm: bytes) -> None:
        self._pcm += pcm
        self._recognition.feed(pcm)

    async def aclose(self) -> None:
        self._reading.stop()
        self._drop_early()
        await self._recognition.aclose()

    def expect_end(self) -> None:
        if self._early is not None:
            return
        held = _HeldEvents()
        reply = self._reply(held, held.prepared_at, bytes(self._pcm), early=held.released.wait)
        self._early = (held, asyncio.create_task(reply, name="early-reply"))

    def resume(self) -> None:
        if self._drop_early():
            self._reading.allow()
            self._recognition.resume()

    def _drop_early(self) -> bool:
        """Cancel the reply being prepared, with its held events; whether there was one."""
        if self._early is None:
            return False
        _, task = self._early
        self._early = None
        task.cancel()
        return True

    async def respond(self, started: float) -> None:
        if self._early is None:
            await self._reply(self._emit, started, bytes(self._pcm))
            return
        held, task = self._early
        self._early = None  # adopted: from now on it is the turn's own work
        held.release(self._emit, started)
        await task  # a barge-in cancelling this turn cancels the task too

    async def _reply(
        self, emit: Emit, started: float, pcm: bytes, early: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        """The turn's work from the utterance ``pcm`` to the end of the reply's synthesis. ``early``:
        the reply is prepared before the end of the turn; tools wait for it. Until its first audio
        the turn presses: other turns' work that can wait does."""
        clock = StageClock(emit, started)
        speaker: _Speaker | None = None
        release = self._engine.urgency.hold()
        lead = self._engine.lead()
        try:
            with needed_by(lead.deadline):  # every model call of the turn, in the order it is needed
                transcript = await self._transcribe(clock, emit, pcm, final=early is None)
                if transcript is None:
                    return
                emit(Transcribed(transcript))
                speaker = _Speaker(self._tts, emit, clock, lead, on_first_audio=release)
                tools = self._turn_tools(emit, speaker.say, early)
                match = tools.match(transcript) if tools is not None else None
                if tools is not None and match is not None:
                    await self._answer(emit, tools, match, speaker)
                else:
                    self._reading.stop()  # the reply reads whatever is not in the cache yet
                    history = [*self._history, Message("user", transcript)]
                    options = ReplyOptions(self._note(), tools, may_pause=lead.can_wait, needed_by=lead.text_deadline)
                    if self._settings.streaming:
                        await self._reply_streaming(clock, emit, history, options, speaker)
                    else:
                        await self._reply_naive(clock, emit, history, options, speaker)
                emit(SpeechDone())
        except StageError as exc:
            emit(TurnFailed(exc.code, exc.message, exc.stage))
        finally:
            release()
            if speaker is not None:
                speaker.close()

    def _turn_tools(
        self, emit: Emit, say: Callable[[str], None], ready: Callable[[], Awaitable[object]] | None
    ) -> TurnTools | None:
        if self._toolbox is None or self._context.tools is None or not len(self._toolbox.registry):
            return None
        return TurnTools(self._toolbox, self._context.tools, emit, say, self._context.recorded_tools, ready)

    async def _transcribe(self, clock: StageClock, emit: Emit, pcm: bytes, final: bool) -> str | None:
        if audio.duration_ms(len(pcm), INPUT_SAMPLE_RATE) < self._settings.min_utterance_ms:
            emit(NothingHeard("too_short"))
            return None
        if audio.rms(pcm) < self._settings.silence_rms:
            emit(NothingHeard("silence"))
            return None
        recognise = self._recognition.finish if final else self._recognition.peek
        try:
            async with clock.call(Stage.ASR):
                text = (await recognise(pcm)).strip()
        except Exception as exc:
            raise StageError(Stage.ASR, f"Speech recognition failed: {exc}") from exc
        if is_empty_transcript(text):
            emit(NothingHeard("no_words"))
            return None
        return text

    async def _answer(self, emit: Emit, tools: TurnTools, match: IntentMatch, speaker: _Speaker) -> None:
        """The intent layer's answer: the tool's result in a templated sentence, no model involved."""
        spoken = await tools.answer(match)
        emit(ReplyPiece(spoken))
        emit(ReplyDone(spoken))
        for segment in split_sentences(spoken):
            speaker.say(segment)
        await speaker.finish()

    async def _llm_pieces(
        self, clock: StageClock, history: Sequence[Message], options: ReplyOptions
    ) -> AsyncIterator[str]:
        try:
            async for piece in clock.stream(Stage.LLM, self._llm.stream_reply(history, options)):
                yield piece
        except Exception as exc:
            raise StageError(Stage.LLM, f"The language model failed: {exc}") from exc

    async def _reply_streaming(
        self, clock: StageClock, emit: Emit, history: Sequence[Message], options: ReplyOptions, speaker: _Speaker
    ) -> None:
        splitter = SentenceSplitter(first_segment_words=self._settings.first_segment_words)
        pieces: list[str] = []
        async for piece in self._llm_pieces(clock, history, options):
            pieces.append(piece)
            emit(ReplyPiece(piece))
            for segment in splitter.feed(piece):
                speaker.say(segment)
            if speaker.stopped:  # TTS failed: stop the model too, and report the TTS error
                break
        for segment in splitter.flush():
            speaker.say(segment)
        if not speaker.stopped:
            emit(ReplyDone("".join(pieces)))
        await speaker.finish()

    async def _reply_naive(
        self, clock: StageClock, emit: Emit, history: Sequence[Message], options: ReplyOptions, speaker: _Speaker
    ) -> None:
        pieces: list[str] = []
        async for piece in self._llm_pieces(clock, history, options):
            pieces.append(piece)
            emit(ReplyPiece(piece))
        reply = "".join(pieces)
        emit(ReplyDone(reply))
        speaker.say(reply)
        await speaker.finish()


class Announcement:
    """The assistant speaking on its own (a timer that ended): no user audio, no model."""

    def __init__(self, tts: TTS, text: str, emit: Emit, lead: ReplyLead) -> None:
        self._tts = tts
        self._text = text
        self._emit = emit
        self._lead = lead

    def feed(self, pcm: bytes) -> None:
        pass

    def expect_end(self) -> None:
        pass

    def resume(self) -> None:
        pass

    async def aclose(self) -> None:
        pass

    async def respond(self, started: float) -> None:
        clock = StageClock(self._emit, started)
        with needed_by(self._lead.deadline):  # the speaker's task starts in this context
            speaker = _Speaker(self._tts, self._emit, clock, self._lead)
        try:
            self._emit(ReplyPiece(self._text))
            self._emit(ReplyDone(self._text))
            for segment in split_sentences(self._text):
                speaker.say(segment)
            await speaker.finish()
            self._emit(SpeechDone())
        except StageError as exc:
            self._emit(TurnFailed(exc.code, exc.message, exc.stage))
        finally:
            speaker.close()
