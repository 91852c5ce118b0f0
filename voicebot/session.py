"""One voice session: a WebSocket connection, its state machine, its conversation and its turns.

One session = one mailbox. A reader task puts every client frame in the mailbox; the running turn
puts its results there too, tagged with the turn number. A single loop takes items from the mailbox,
fires state-machine triggers and sends every message, so states and messages are always in order
and no two tasks ever move the machine. Client frames outrank turn results, so a barge-in jumps
ahead of reply audio that is still waiting to be sent; results of a cancelled turn are dropped.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from voicebot import audio, recording
from voicebot.logs import SessionLog, redact_text
from voicebot.machine import Change, IllegalTransition, SessionMachine, State, Trigger
from voicebot.pipeline import (
    NothingHeard,
    ReplyDone,
    ReplyPiece,
    SpeechAudio,
    SpeechDone,
    Transcribed,
    Turn,
    TurnEvent,
    TurnFailed,
    TurnFinished,
)
from voicebot.protocol import (
    INPUT_SAMPLE_RATE,
    AudioDone,
    AudioStart,
    Error,
    ProtocolError,
    Reset,
    ResponseDone,
    ResponseInterrupted,
    ResponseText,
    ServerEvent,
    StartListening,
    Status,
    StopListening,
    Transcript,
    check_audio_frame,
    encode_event,
    parse_action,
)
from voicebot.providers.base import Message, Stages
from voicebot.providers.fallback import FallbackNotice
from voicebot.settings import Settings
from voicebot.text import SpokenSegment, heard_text
from voicebot.timing import StageMark, timed_stages

STATUS_TEXT: dict[State, str] = {
    State.IDLE: "Ready",
    State.LISTENING: "Listening…",
    State.TRANSCRIBING: "Transcribing…",
    State.THINKING: "Thinking…",
    State.SPEAKING: "Speaking…",
}
NOTHING_HEARD_TEXT = "I didn't catch that. Hold the button while you speak."

#: Client frames waiting in the mailbox beyond which further audio frames are dropped (a flood).
MAX_PENDING_CLIENT_FRAMES = 512

_CLIENT, _TURN = 0, 1  # mailbox priorities: client frames first


class Transport(Protocol):
    """The socket a session talks through (a Quart websocket in the server, anything in tests)."""

    async def receive(self) -> str | bytes | None: ...

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...


@dataclass
class _TurnResult:
    turn: int
    event: TurnEvent | StageMark


@dataclass
class _Closed:
    """The client went away."""


@dataclass
class ReplyProgress:
    """What the page has been sent of the current turn's reply, to know what it may have heard."""

    transcript: str | None = None
    text: str = ""
    segments: list[SpokenSegment] = field(default_factory=list)
    sample_rate: int = 0
    audio_bytes: int = 0
    first_audio_at: float | None = None

    def add_audio(self, chunk: SpeechAudio) -> None:
        ms = audio.duration_ms(len(chunk.pcm), chunk.sample_rate)
        self.audio_bytes += len(chunk.pcm)
        if chunk.segment_index < len(self.segments):
            last = self.segments[chunk.segment_index]
            self.segments[chunk.segment_index] = SpokenSegment(last.text, last.duration_ms + ms)
        else:
            self.segments.append(SpokenSegment(chunk.segment, ms))

    @property
    def audio_ms(self) -> float:
        return audio.duration_ms(self.audio_bytes, self.sample_rate) if self.sample_rate else 0.0

    def heard(self, played_ms: int | None) -> str:
        """What of the reply was heard: ``played_ms`` as the page reports it, or (without it) as much
        as real-time playback since the first audio frame could have played."""
        if self.first_audio_at is None:
            return ""
        if played_ms is None:
            played_ms = int((time.monotonic() - self.first_audio_at) * 1000)
        return heard_text(self.segments, min(played_ms, self.audio_ms))


class VoiceSession:
    """Runs one connection from its first status to its close."""

    def __init__(
        self,
        transport: Transport,
        stages: Stages,
        settings: Settings,
        session_id: str | None = None,
        client: dict[str, str] | None = None,
    ) -> None:
        """``client``: who connected (``client`` address, ``user_agent``), for the log and the recording."""
        self.id = session_id or uuid.uuid4().hex[:16]
        self.history: list[Message] = []
        self.turn = 0
        self.dropped_audio_frames = 0
        self.machine = SessionMachine(on_change=self._log_change)
        self._transport = transport
        self._stages = stages
        self._settings = settings
        self._client = client or {}
        self._recorder = recording.make_recorder(settings.recording, self.id)
        self._log = SessionLog(self.id, lambda: {"turn": self.turn, "state": self.state.value}, self._recorder.log)
        self._mailbox: asyncio.PriorityQueue[tuple[int, int, object]] = asyncio.PriorityQueue()
        self._sequence = itertools.count()
        self._pending_client_frames = 0
        self._utterance = bytearray()
        self._max_utterance_bytes = int(settings.session.max_utterance_s * INPUT_SAMPLE_RATE) * 2
        self._active_turn: int | None = None
        self._turn_task: asyncio.Task[None] | None = None
        self._reply = ReplyProgress()

    @property
    def state(self) -> State:
        return self.machine.state

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the session until the client disconnects."""
        context = structlog.contextvars.bind_contextvars(session_id=self.id)  # for library lines too
        self._recorder.start(self._settings, self._stages, self._client)
        self._log.info("session_started", **self._client)
        reader = asyncio.create_task(self._read_client(), name=f"read-{self.id}")
        try:
            await self._send(Status(State.IDLE, STATUS_TEXT[State.IDLE], self.turn, session_id=self.id))
            while True:
                _, _, item = await self._mailbox.get()
                if isinstance(item, _Closed):
                    break
                try:
                    if isinstance(item, _TurnResult):
                        if isinstance(item.event, StageMark):
                            self._on_stage_mark(item.turn, item.event)
                        else:
                            await self._on_turn_result(item.turn, item.event)
                    else:
                        self._pending_client_frames -= 1
                        await self._on_client_frame(item)  # type: ignore[arg-type]
                except _TransportClosed:
                    break
                except Exception as exc:  # noqa: BLE001 - a bug must not end the session
                    self._log.exception("session_error")
                    await self._recover(exc)
        except _TransportClosed:
            pass
        finally:
            reader.cancel()
            self._cancel_turn()
            self._log.info("session_ended", dropped_audio_frames=self.dropped_audio_frames)
            try:
                await self._recorder.close()
            finally:
                structlog.contextvars.reset_contextvars(**context)

    async def _read_client(self) -> None:
        try:
            while True:
                frame = await self._transport.receive()
                if not isinstance(frame, str) and self._pending_client_frames >= MAX_PENDING_CLIENT_FRAMES:
                    self.dropped_audio_frames += 1
                    continue
                self._pending_client_frames += 1
                self._mailbox.put_nowait((_CLIENT, next(self._sequence), _Frame(frame)))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any receive failure means the client is gone
            self._mailbox.put_nowait((_CLIENT, next(self._sequence), _Closed()))

    def _post_turn_result(self, turn: int, event: TurnEvent | StageMark) -> None:
        self._mailbox.put_nowait((_TURN, next(self._sequence), _TurnResult(turn, event)))

    async def _recover(self, exc: Exception) -> None:
        """After an unexpected error: tell the page, abandon the turn, and be usable again."""
        await self._send(Error("internal_error", f"Something went wrong in the server: {exc}", self.turn))
        if self.machine.busy:
            self._cancel_turn()
            await self._transition(Trigger.FAIL, reason="failed")

    # --- client frames ----------------------------------------------------------------------------

    async def _on_client_frame(self, frame: _Frame) -> None:
        if isinstance(frame.data, str):
            self._recorder.client_text(frame.data, frame.at)
            try:
                action = parse_action(frame.data)
            except ProtocolError as exc:
                self._log.info("bad_client_message", code=exc.code)
                await self._send(Error(exc.code, exc.message))
                return
            if isinstance(action, StartListening):
                await self._start_listening(action.played_ms)
            elif isinstance(action, StopListening):
                await self._stop_listening()
            elif isinstance(action, Reset):
                await self._reset()
            return
        try:
            pcm = check_audio_frame(frame.data)
        except ProtocolError as exc:
            await self._send(Error(exc.code, exc.message))
            return
        if self.state is not State.LISTENING:
            self.dropped_audio_frames += 1
            return
        self._utterance += pcm
        self._recorder.client_audio(len(pcm), frame.at)
        if len(self._utterance) >= self._max_utterance_bytes:
            await self._stop_listening(reason="too_long")

    async def _start_listening(self, played_ms: int | None) -> None:
        if self.state is State.LISTENING:
            await self._send(Error("already_listening", "Already listening."))
            return
        reason = None
        if self.machine.busy:
            await self._interrupt(played_ms)
            reason = "interrupted"
        self._utterance.clear()
        await self._transition(Trigger.START_LISTENING, reason=reason)

    async def _stop_listening(self, reason: str | None = None) -> None:
        if self.state is not State.LISTENING:
            await self._send(Error("not_listening", "Not listening: send start_listening first."))
            return
        started = time.perf_counter()
        pcm = bytes(self._utterance)
        self._utterance.clear()
        self.turn += 1
        self._active_turn = turn = self.turn
        self._reply = ReplyProgress()
        self._log.info(
            "utterance_ended",
            audio_ms=round(audio.duration_ms(len(pcm), INPUT_SAMPLE_RATE)),
            reason=reason,
            dropped_audio_frames=self.dropped_audio_frames,
        )
        self._recorder.utterance(turn, pcm, self.history, time.monotonic())
        await self._transition(Trigger.STOP_LISTENING, reason=reason)
        pipeline = Turn(
            timed_stages(self._stages, lambda mark: self._post_turn_result(turn, mark), started),
            self._settings.session,
            self.history,
            lambda event: self._post_turn_result(turn, event),
        )
        self._turn_task = asyncio.create_task(pipeline.run(pcm), name=f"turn-{self.id}-{turn}")

    async def _reset(self) -> None:
        if self.machine.busy:
            await self._interrupt(None)
        self.history.clear()
        self._utterance.clear()
        await self._transition(Trigger.RESET, message="New conversation", reason="reset")

    async def _interrupt(self, played_ms: int | None) -> None:
        """Cancel the turn in progress; keep in the conversation only what the user heard."""
        turn, reply = self._active_turn, self._reply
        self._cancel_turn()
        if turn is None or reply.transcript is None:
            return  # still transcribing: no reply yet, nothing to keep
        heard = reply.heard(played_ms)
        self._remember(reply.transcript, heard)
        self._log.info("barge_in", played_ms=played_ms, heard=heard)
        await self._send(ResponseInterrupted(turn, heard))

    def _cancel_turn(self) -> None:
        self._active_turn = None
        if self._turn_task is not None and not self._turn_task.done():
            self._turn_task.cancel()
        self._turn_task = None

    # --- turn results -----------------------------------------------------------------------------

    def _on_stage_mark(self, turn: int, mark: StageMark) -> None:
        if turn == self._active_turn:
            self._log.info("stage_ended" if mark.ended else "stage_started", **mark.fields())

    async def _on_turn_result(self, turn: int, event: TurnEvent) -> None:
        if turn != self._active_turn:
            return  # a result of a turn that was cancelled (barge-in, reset)
        reply = self._reply
        if isinstance(event, SpeechAudio):
            if reply.first_audio_at is None:
                reply.sample_rate = event.sample_rate
                await self._transition(Trigger.SPEAK)
                await self._send(AudioStart(turn, sample_rate=event.sample_rate))
                reply.first_audio_at = time.monotonic()
            await self._send_bytes(event.pcm)
            reply.add_audio(event)
        elif isinstance(event, ReplyPiece):
            await self._send(ResponseText(turn, event.text))
        elif isinstance(event, Transcribed):
            reply.transcript = event.text
            self._log.info("transcript", text=event.text)
            await self._send(Transcript(turn, event.text))
            await self._transition(Trigger.TRANSCRIBED)
        elif isinstance(event, ReplyDone):
            reply.text = event.text
            self._log.info("reply", text=event.text)
            await self._send(ResponseDone(turn, event.text))
        elif isinstance(event, SpeechDone):
            if reply.first_audio_at is not None:
                await self._send(AudioDone(turn, round(reply.audio_ms)))
        elif isinstance(event, TurnFinished):
            if reply.transcript is not None:
                self._remember(reply.transcript, reply.text)
            self._active_turn = None
            self._log.info("turn_finished", **{k: round(v) for k, v in event.timings.items()})
            await self._transition(Trigger.FINISH)
        elif isinstance(event, NothingHeard):
            self._active_turn = None
            self._log.info("nothing_heard", why=event.why)
            await self._transition(Trigger.NOTHING_HEARD, message=NOTHING_HEARD_TEXT, reason="nothing_heard")
        elif isinstance(event, TurnFailed):
            self._active_turn = None
            error = event.error
            self._log.warning("turn_failed", code=error.code, error=error.message)
            await self._send(Error(error.code, error.message, turn))
            await self._transition(Trigger.FAIL, reason="failed")
        elif isinstance(event, FallbackNotice):
            skipped = [f"{item.provider}: {item.reason}" for item in event.skipped]
            self._log.warning("provider_fallback", stage=event.stage.value, provider=event.provider, skipped=skipped)
            status = Status(
                self.state, event.message, turn, reason="fallback", stage=event.stage.value, provider=event.provider
            )
            await self._send(status)

    def _remember(self, user_text: str, assistant_text: str) -> None:
        self.history.append(Message("user", user_text))
        if assistant_text.strip():
            self.history.append(Message("assistant", assistant_text))
        keep = self._settings.session.history_turns * 2
        del self.history[: max(0, len(self.history) - keep)]

    # --- output -----------------------------------------------------------------------------------

    async def _transition(self, trigger: Trigger, message: str | None = None, reason: str | None = None) -> None:
        try:
            self.machine.fire(trigger)
        except IllegalTransition:
            self._log.error("illegal_transition", trigger=trigger.value)
            raise
        state = self.state
        await self._send(Status(state, message or STATUS_TEXT[state], self.turn, reason=reason))

    def _log_change(self, change: Change) -> None:
        self._log.info(
            "state_changed",
            source=change.source.value,
            dest=change.dest.value,
            trigger=change.trigger.value,
        )

    async def _send(self, event: ServerEvent) -> None:
        if isinstance(event, Error):
            # Provider errors can quote a request, key included: the page gets no secrets either.
            event = replace(event, message=redact_text(event.message))
            self._log.info("error_sent", code=event.code)
        text = encode_event(event)
        self._recorder.server_event(event, text)
        try:
            await self._transport.send_text(text)
        except Exception as exc:
            raise _TransportClosed from exc

    async def _send_bytes(self, data: bytes) -> None:
        try:
            await self._transport.send_bytes(data)
        except Exception as exc:
            raise _TransportClosed from exc
        self._recorder.reply_audio(data)


@dataclass
class _Frame:
    """One frame from the client: text, binary, or ``None`` (how Quart delivers an empty binary frame)."""

    data: str | bytes | None
    at: float = field(default_factory=time.monotonic)
    """When it arrived (``time.monotonic()``)."""


class _TransportClosed(Exception):
    """Sending failed because the client went away."""
