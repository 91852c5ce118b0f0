"""One voice session: a WebSocket connection, its state machine, its conversation and its turns.

One session = one mailbox. A reader task puts every client frame in the mailbox; the turn engine's
events arrive there too, tagged with the utterance they belong to. A single loop takes items from
the mailbox, fires state-machine triggers and queues every message, so states and messages are always
in order and no two tasks ever move the machine. Client frames outrank turn events, so a barge-in
jumps ahead of events still waiting; events of a cancelled utterance are dropped.

Each turn event is handled once here and becomes everything it means: a trigger, a page message, a
log line, a recording line and the turn's timing summary. Reply audio never crosses the mailbox frame
by frame: the turn's :class:`~voicebot.turn.playback.Playback` paces whole segments straight to the
outbox, and only its two milestones (all sent, all heard) come back through the mailbox.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Protocol

import structlog

from voicebot import audio
from voicebot.handsfree.clock import MicrophoneClock
from voicebot.handsfree.endpointing import BargeIn, SpeechEnded, SpeechStarted
from voicebot.handsfree.listener import HandsFreeListener, ListenerEvent, SpeechAudio, SpeechPaused, SpeechResumed
from voicebot.handsfree.pauses import PauseDetector
from voicebot.handsfree.vad import shared_model
from voicebot.logs import SessionLog, redact_text
from voicebot.providers.base import Message
from voicebot.recording import writer as recording
from voicebot.session.limits import FLOOD, SLOW_CLIENT, ClientPolicy, Close, CloseSession
from voicebot.session.machine import Change, IllegalTransition, SessionMachine, State, Trigger
from voicebot.session.observer import NoObserver, SessionObserver
from voicebot.session.outbox import Outbox, OutboxFull
from voicebot.session.protocol import (
    INPUT_SAMPLE_RATE,
    AudioDone,
    AudioStart,
    Error,
    Metrics,
    Mode,
    PartialTranscriptMessage,
    ProtocolError,
    Reset,
    ResponseDone,
    ResponseInterrupted,
    ResponseText,
    ServerEvent,
    SetMode,
    SetTimeZone,
    StartListening,
    Status,
    StopListening,
    TimersMessage,
    ToolCallMessage,
    ToolResultMessage,
    Transcript,
    check_audio_frame,
    encode_event,
    parse_action,
)
from voicebot.settings import Settings
from voicebot.threads import run_blocking
from voicebot.tools.base import ToolContext
from voicebot.tools.builtins import timer_done_announcement
from voicebot.tools.timers import Timer, TimerBoard
from voicebot.turn.engine import TurnContext, TurnEngine, Utterance
from voicebot.turn.events import (
    AudioStarted,
    FallbackUsed,
    Interrupted,
    NothingHeard,
    PartialTranscript,
    ReplyDone,
    ReplyPiece,
    SegmentAudio,
    SpeechDone,
    ToolCalled,
    ToolReturned,
    Transcribed,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    event_fields,
)
from voicebot.turn.playback import Playback
from voicebot.turn.timing import TurnTimings
from voicebot.turn.tools import Toolbox

STATUS_TEXT: dict[State, str] = {
    State.IDLE: "Ready",
    State.LISTENING: "Listening…",
    State.TRANSCRIBING: "Transcribing…",
    State.THINKING: "Thinking…",
    State.SPEAKING: "Speaking…",
}
ANNOUNCEMENT_TEXT = "Timer done"
#: Tools whose results change the session's timers (the page is sent the new list).
TIMER_TOOLS = frozenset({"set_timer", "cancel_timer"})
NOTHING_HEARD_TEXT = "I didn't catch that. Hold the button while you speak."
NOTHING_HEARD_HANDS_FREE = "I didn't catch that. Please say it again."

#: Client frames waiting in the mailbox beyond which further audio frames are dropped and a text frame
#: closes the session with 1008 (a flood).
MAX_PENDING_CLIENT_FRAMES = 512

_SERVER, _CLIENT, _TURN = -1, 0, 1  # mailbox priorities: the server's own close first, then client frames


class Transport(Protocol):
    """The socket a session talks through (a Quart websocket in the server, anything in tests)."""

    async def receive(self) -> str | bytes | None: ...

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...


@dataclass
class _Frame:
    """One frame from the client: text, binary, or ``None`` (how Quart delivers an empty binary frame)."""

    data: str | bytes | None
    at: float = field(default_factory=time.monotonic)
    """When it arrived (``time.monotonic()``)."""


@dataclass
class _Closed:
    """The client went away."""

    reason: str = "disconnected"
    close: Close | None = None
    """How the server closes the socket (``None``: the client already closed it)."""


@dataclass
class _PlaybackSent:
    """The playback sent its last frame."""

    duration_ms: float


@dataclass
class _PlaybackDrained:
    """The page has had time to play the whole reply."""


@dataclass
class _TimerFired:
    """One of the session's timers ended."""

    timer: Timer


@dataclass
class _TurnItem:
    utterance: int
    """Which utterance (``_Turn.key``) the item belongs to; items of any other are stale."""
    at_ms: float | None
    """When it happened, in ms since the user released the button (``None``: while still speaking)."""
    item: TurnEvent | _PlaybackSent | _PlaybackDrained


@dataclass
class _Turn:
    """The utterance being heard, then the turn answering it."""

    key: int
    utterance: Utterance
    number: int
    """The turn number its events carry (it becomes the session's ``turn`` at release)."""
    pcm_bytes: int = 0
    released_at: float | None = None
    """``time.perf_counter()`` when the user released the button."""
    task: asyncio.Task[None] | None = None
    announcement: bool = False
    """The assistant speaks on its own (a timer ended): no user audio, no transcript."""
    transcript: str | None = None
    reply: str = ""
    playback: Playback | None = None
    timings: TurnTimings = field(default_factory=TurnTimings)
    pauses: PauseDetector | None = None
    """Pauses while the button is held (push-to-talk with ``session.early_reply_ms``)."""

    def at_ms(self) -> float | None:
        return None if self.released_at is None else (time.perf_counter() - self.released_at) * 1000


class VoiceSession:
    """Runs one connection from its first status to its close."""

    def __init__(
        self,
        transport: Transport,
        engine: TurnEngine,
        settings: Settings,
        session_id: str | None = None,
        client: dict[str, str] | None = None,
        providers: dict[str, dict[str, str]] | None = None,
        toolbox: Toolbox | None = None,
        observer: SessionObserver | None = None,
    ) -> None:
        """``client``: who connected (``client`` address, ``user_agent``), for the log and the recording;
        ``providers``: each stage's provider and model, for the recording; ``toolbox``: the server's
        tools (``None``: no tools, no timers); ``observer``: who counts what happens (the server's metrics)."""
        self.id = session_id or uuid.uuid4().hex[:16]
        self.history: list[Message] = []
        self.turn = 0
        self.dropped_audio_frames = 0
        self.machine = SessionMachine(on_change=self._log_change)
        self._transport = transport
        self._engine = engine
        self._settings = settings
        self._client = client or {}
        self._providers = providers or {}
        self._observer = observer or NoObserver()
        self._recorder = recording.make_recorder(settings.recording, self.id)
        self._log = SessionLog(self.id, lambda: {"turn": self.turn, "state": self.state.value}, self._recorder)
        self._mailbox: asyncio.PriorityQueue[tuple[int, int, object]] = asyncio.PriorityQueue()
        self._sequence = itertools.count()
        self._keys = itertools.count(1)
        self._pending_client_frames = 0
        self._max_utterance_bytes = int(settings.session.max_utterance_s * INPUT_SAMPLE_RATE) * audio.SAMPLE_WIDTH
        self._current: _Turn | None = None
        self._closing: set[asyncio.Task[None]] = set()
        self._outbox = Outbox(
            transport.send_text, transport.send_bytes, self._client_gone, settings.limits.outbox_frames
        )
        self._policy = ClientPolicy(settings.limits)
        self._slow_client = False
        self.close: Close | None = None
        """Set when the server ends the session (a broken limit, shutdown, idle): the close to send."""
        self.mode = Mode.PUSH_TO_TALK
        self._listener: HandsFreeListener | None = None
        self._pressed = False
        """A push-to-talk press in progress (in hands-free mode the button still works)."""
        self._echo_reference: list[tuple[bytes | None, float]] = []
        """Reply audio (16 kHz) and when the microphone will hear it, for the listener's echo guard,
        in order; ``None`` instead of audio: the reply was cut off then (the page stops playing)."""
        self._mic_clock = MicrophoneClock()
        """When the microphone audio arrived: places the reply on the listener's timeline."""
        self.timers: TimerBoard | None = None
        self._tool_context: ToolContext | None = None
        self._announcements: list[str] = []
        if toolbox is not None:
            if toolbox.timers:
                limits = toolbox.settings
                self.timers = TimerBoard(
                    self._timer_fired,
                    clock=toolbox.timer_clock,
                    max_timers=limits.max_timers,
                    max_duration_s=limits.max_timer_s,
                )
            self._tool_context = ToolContext(timers=self.timers)

    @property
    def state(self) -> State:
        return self.machine.state

    # --- the loop ---------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the session until the client disconnects."""
        context = structlog.contextvars.bind_contextvars(session_id=self.id)  # for library lines too
        self._recorder.start(self._settings, self._providers, self._client)
        self._log.info("session_started", **self._client)
        self._outbox.start()
        self._observer.session_opened()
        reader = asyncio.create_task(self._read_client(), name=f"read-{self.id}")
        timers = None if self.timers is None else asyncio.create_task(self.timers.run(), name=f"timers-{self.id}")
        try:
            self._send(Status(State.IDLE, STATUS_TEXT[State.IDLE], self.turn, session_id=self.id, mode=self.mode))
            while True:
                item = await self._next_item()
                if isinstance(item, _Closed):
                    self.close = item.close
                    if item.close is not None:
                        self._log.info("session_closing", reason=item.reason, code=item.close.code)
                    break
                try:
                    if isinstance(item, _TurnItem):
                        self._on_turn_item(item)
                    elif isinstance(item, _TimerFired):
                        self._on_timer_fired(item.timer)
                    else:
                        self._pending_client_frames -= 1
                        await self._on_client_frame(item)  # type: ignore[arg-type]
                except OutboxFull as exc:
                    self._log.warning("slow_client", reason=str(exc))
                    self.close = SLOW_CLIENT
                    break
                except CloseSession as exc:
                    self._log.warning("client_limit", reason=exc.detail, code=exc.close.code)
                    self.close = exc.close
                    break
                except Exception as exc:  # noqa: BLE001 - a bug must not end the session
                    self._log.exception("session_error")
                    self._recover(exc)
        except OutboxFull as exc:
            self._log.warning("slow_client", reason=str(exc))
            self.close = SLOW_CLIENT
        finally:
            reader.cancel()
            if timers is not None and self.timers is not None:
                timers.cancel()
                self.timers.cancel_all()
            await self._abandon()
            if self.close is not None and self.close is not SLOW_CLIENT:
                await self._outbox.flush(1.0)  # the page sees the last error before the close
            await self._outbox.aclose()
            self._observer.session_closed()
            self._log.info("session_ended", dropped_audio_frames=self.dropped_audio_frames)
            try:
                await self._recorder.close()
            finally:
                structlog.contextvars.reset_contextvars(**context)

    async def _read_client(self) -> None:
        try:
            while True:
                frame = await self._transport.receive()
                if self._pending_client_frames >= MAX_PENDING_CLIENT_FRAMES:
                    if isinstance(frame, str):  # a flood of messages no page sends: stop reading, close
                        self._mailbox.put_nowait((_SERVER, next(self._sequence), _Closed("flood", FLOOD)))
                        return
                    self.dropped_audio_frames += 1
                    self._observer.audio_dropped()
                    continue
                self._pending_client_frames += 1
                self._mailbox.put_nowait((_CLIENT, next(self._sequence), _Frame(frame)))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - any receive failure means the client is gone
            self._client_gone()

    def _client_gone(self, close: Close | None = None) -> None:
        self._mailbox.put_nowait(
            (_CLIENT, next(self._sequence), _Closed("slow_client" if close else "disconnected", close))
        )

    def end(self, close: Close, reason: str) -> None:
        """End the session from outside (server shutdown): its turn is cut, its recording flushed, and
        the socket closed with ``close``. Jumps ahead of everything waiting in the mailbox."""
        self._mailbox.put_nowait((_SERVER, next(self._sequence), _Closed(reason, close)))

    async def _next_item(self) -> object:
        """The next mailbox item; a session left idle for ``limits.idle_timeout_s`` gets a close."""
        timeout = self._settings.limits.idle_timeout_s
        if self.state is not State.IDLE or not timeout:
            return (await self._mailbox.get())[2]
        try:
            return (await asyncio.wait_for(self._mailbox.get(), timeout))[2]
        except TimeoutError:
            return _Closed(
                "idle", Close(1000, f"Closed after {timeout:g} s without use. Press the button to reconnect.")
            )

    def _post(self, turn: _Turn, item: TurnEvent | _PlaybackSent | _PlaybackDrained) -> None:
        self._mailbox.put_nowait((_TURN, next(self._sequence), _TurnItem(turn.key, turn.at_ms(), item)))

    def _recover(self, exc: Exception) -> None:
        """After an unexpected error: tell the page, abandon the turn, and be usable again."""
        self._send(Error("internal_error", f"Something went wrong in the server: {exc}", self.turn))
        if self.machine.busy:
            self._cancel_turn()
            self._transition(Trigger.FAIL, reason="failed")

    # --- client frames ----------------------------------------------------------------------------

    async def _on_client_frame(self, frame: _Frame) -> None:
        if isinstance(frame.data, str):
            self._policy.control_message()
            self._recorder.client_text(frame.data, frame.at)
            try:
                action = parse_action(frame.data)
            except ProtocolError as exc:
                self._log.info("bad_client_message", code=exc.code)
                self._send(Error(exc.code, exc.message))
                self._policy.malformed()
                return
            self._policy.well_formed()
            if isinstance(action, StartListening):
                self._start_listening(action.played_ms)
            elif isinstance(action, StopListening):
                self._stop_listening()
            elif isinstance(action, Reset):
                await self._reset()
            elif isinstance(action, SetMode):
                await self._set_mode(action.mode)
            elif isinstance(action, SetTimeZone) and self._tool_context is not None:
                self._tool_context.time_zone = action.time_zone
            return
        try:
            pcm = check_audio_frame(frame.data)
        except ProtocolError as exc:
            self._send(Error(exc.code, exc.message))
            self._policy.malformed()
            return
        self._policy.well_formed()
        if self._listener is not None:
            self._mic_clock.received(audio.duration_ms(len(pcm), INPUT_SAMPLE_RATE), frame.at)
            await self._hear(self._listener, pcm)
            if not self._pressed:
                return  # hands-free: the listener keeps the utterance and hands it over at its end
        turn = self._current
        if self.state is not State.LISTENING or turn is None:
            self.dropped_audio_frames += 1
            self._observer.audio_dropped()
            return
        self._take_audio(turn, pcm, frame.at)
        if turn.pcm_bytes >= self._max_utterance_bytes:
            self._stop_listening(reason="too_long")
        elif self._listener is None and self._settings.session.early_reply_ms:
            await self._held_pauses(turn, pcm)

    async def _held_pauses(self, turn: _Turn, pcm: bytes) -> None:
        """Push-to-talk: after a pause with the button still held, the reply is prepared (and sent
        at release); speech after it drops what was prepared (see ``voicebot.handsfree.pauses``)."""
        if turn.pauses is None:
            model = await run_blocking(shared_model)  # loaded once per process, off the loop
            turn.pauses = PauseDetector(self._settings.session.early_reply_ms, self._settings.hands_free, model)
        pauses = turn.pauses
        events = await run_blocking(lambda: pauses.feed(pcm))
        if self._current is turn and self.state is State.LISTENING:
            for event in events:
                self._voice_paused(event)

    def _take_audio(self, turn: _Turn, pcm: bytes, at: float) -> None:
        turn.utterance.feed(pcm)
        turn.pcm_bytes += len(pcm)
        self._recorder.client_audio(pcm, at)

    def _start_listening(self, played_ms: int | None) -> None:
        if self.state is State.LISTENING:
            self._send(Error("already_listening", "Already listening."))
            return
        reason = None
        if self.machine.busy:
            self._observer.barge_in()
            self._interrupt(played_ms)
            reason = "interrupted"
        if self._listener is not None:
            self._pressed = True  # the button works in hands-free mode too: the detector waits
            self._listener.reset()
        self._begin_utterance()
        self._transition(Trigger.START_LISTENING, reason=reason)

    def _begin_utterance(self) -> None:
        key = next(self._keys)
        turn_ref: list[_Turn] = []
        context = TurnContext(tools=self._tool_context)
        utterance = self._engine.listen(list(self.history), lambda event: self._post(turn_ref[0], event), context)
        self._current = _Turn(key, utterance, self.turn + 1)
        turn_ref.append(self._current)

    def _stop_listening(self, reason: str | None = None) -> None:
        turn = self._current
        if self.state is not State.LISTENING or turn is None:
            self._send(Error("not_listening", "Not listening: send start_listening first."))
            return
        if self._listener is not None:
            self._pressed = False
            self._listener.reset()
        self._end_utterance(turn, Trigger.STOP_LISTENING, reason)

    def _end_utterance(self, turn: _Turn, trigger: Trigger, reason: str | None) -> None:
        """The utterance is complete: it becomes turn ``turn.number`` and the turn's task starts."""
        turn.released_at = time.perf_counter()
        self.turn = turn.number
        self._log.info(
            "utterance_ended",
            audio_ms=round(audio.duration_ms(turn.pcm_bytes, INPUT_SAMPLE_RATE)),
            reason=reason,
            dropped_audio_frames=self.dropped_audio_frames,
        )
        self._recorder.utterance(turn.number, self.history, time.monotonic())
        self._transition(trigger, reason=reason)
        respond = turn.utterance.respond(turn.released_at)
        turn.task = asyncio.create_task(respond, name=f"turn-{self.id}-{turn.number}")

    # --- hands-free -------------------------------------------------------------------------------

    async def _set_mode(self, mode: Mode) -> None:
        if mode is self.mode:
            self._send(Status(self.state, STATUS_TEXT[self.state], self.turn, reason="mode", mode=mode))
            return
        if mode is Mode.HANDS_FREE:
            model = await run_blocking(shared_model)  # loaded once per process, off the loop
            self._listener = HandsFreeListener(self._settings.hands_free, model)
            self._mic_clock = MicrophoneClock()  # the listener's stream time starts now
            self._listener.set_assistant_speaking(self.state is State.SPEAKING)
        else:
            self._listener = None
            turn = self._current
            if self.state is State.LISTENING and not self._pressed and turn is not None:
                self._end_utterance(turn, Trigger.SPEECH_ENDED, "mode")  # nothing heard yet: back to idle
        self._pressed = False
        self._echo_reference.clear()
        self.mode = mode
        self._log.info("mode_changed", mode=mode.value)
        self._send(Status(self.state, STATUS_TEXT[self.state], self.turn, reason="mode", mode=mode))

    async def _hear(self, listener: HandsFreeListener, pcm: bytes) -> None:
        """Feed the detector (off the loop) and act on what it heard."""
        references, self._echo_reference = self._echo_reference, []
        events = await run_blocking(lambda: _listen(listener, references, pcm))
        if self._listener is not listener or self._pressed:
            return  # the mode changed, or the button took over, while the detector ran
        for event in events:
            if isinstance(event, SpeechStarted | BargeIn):
                self._voice_started(event)
            elif isinstance(event, SpeechAudio):
                self._voice_audio(event.pcm)
            elif isinstance(event, SpeechPaused | SpeechResumed):
                self._voice_paused(event)
            elif isinstance(event, SpeechEnded):
                self._voice_ended(event)

    def _voice_started(self, event: SpeechStarted | BargeIn) -> None:
        if self.state is State.LISTENING:
            return
        turn = self._current
        if self.machine.busy and turn is not None:
            # What was heard when the user started speaking, not when the detector was sure.
            played_ms = None
            if turn.playback is not None and turn.playback.started_at is not None:
                reaction_ms = event.detected_at_ms - event.at_ms
                played_ms = round(max(0.0, turn.playback.played_ms() - reaction_ms))
            self._interrupt(played_ms)
        if self._listener is not None:
            self._listener.set_assistant_speaking(False)
        self._begin_utterance()
        self._transition(Trigger.SPEECH_STARTED, reason="voice")

    def _voice_audio(self, pcm: bytes) -> None:
        """More of the utterance being heard: recognition works on it while the user speaks."""
        turn = self._current
        if self.state is State.LISTENING and turn is not None:
            self._take_audio(turn, pcm, time.monotonic())

    def _heard_at_ms(self, listener: HandsFreeListener, at: float) -> float:
        """The listener's stream time at server time ``at`` (``time.monotonic()``): from the
        microphone frames' arrival, or, before any frame, from what the listener has judged."""
        stream_ms = self._mic_clock.stream_ms(at)
        return listener.now_ms + (at - time.monotonic()) * 1000 if stream_ms is None else stream_ms

    def _voice_paused(self, event: SpeechPaused | SpeechResumed) -> None:
        """The user fell silent (the reply may be prepared while the end is not yet decided), or
        spoke again (what was prepared is dropped)."""
        turn = self._current
        if self.state is not State.LISTENING or turn is None:
            return
        if isinstance(event, SpeechPaused):
            turn.utterance.expect_end()
        else:
            turn.utterance.resume()
        self._log.info("voice_paused" if isinstance(event, SpeechPaused) else "voice_resumed", at_ms=event.at_ms)

    def _voice_ended(self, event: SpeechEnded) -> None:
        turn = self._current
        if self.state is not State.LISTENING or turn is None:
            return
        # The pieces already taken are the start of the utterance: only the rest is new.
        now = time.monotonic()
        for chunk in audio.frames(event.audio[turn.pcm_bytes :], INPUT_SAMPLE_RATE, 100):
            self._take_audio(turn, chunk, now)
        self._end_utterance(turn, Trigger.SPEECH_ENDED, "voice")

    async def _reset(self) -> None:
        if self.machine.busy:
            self._interrupt(None)
        await self._abandon()
        self.history.clear()
        self._transition(Trigger.RESET, message="New conversation", reason="reset")

    def _interrupt(self, played_ms: int | None) -> None:
        """Cancel the turn in progress; keep in the conversation only what the user heard."""
        turn = self._current
        if turn is None:
            return
        heard = turn.playback.heard(played_ms) if turn.playback is not None else ""
        self._cancel_turn()
        if turn.transcript is None and not turn.announcement:
            return  # still transcribing: no reply yet, nothing to keep
        self._remember(turn.transcript, heard)
        self._turn_event(turn, Interrupted(heard, played_ms), turn.at_ms())
        self._send(ResponseInterrupted(turn.number, heard))

    def _cancel_turn(self) -> None:
        """Stop the current turn's work (its task, its playback) and forget it."""
        turn, self._current = self._current, None
        if turn is None:
            return
        if turn.task is not None and not turn.task.done():
            turn.task.cancel()
        if turn.playback is not None:
            turn.playback.stop()
            if self._listener is not None:
                self._echo_reference.append((None, self._heard_at_ms(self._listener, time.monotonic())))
        closing = asyncio.get_running_loop().create_task(turn.utterance.aclose())
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    async def _abandon(self) -> None:
        """The session is closing or resetting: cancel whatever is in flight and release it."""
        turn = self._current
        self._cancel_turn()
        if turn is not None:
            await turn.utterance.aclose()

    # --- turn events ------------------------------------------------------------------------------

    def _on_turn_item(self, item: _TurnItem) -> None:
        turn = self._current
        if turn is None or item.utterance != turn.key:
            return  # an event of an utterance that was cancelled (barge-in, reset)
        event = item.item
        if isinstance(event, _PlaybackSent):
            self._send(AudioDone(turn.number, round(event.duration_ms)))
            return
        if isinstance(event, _PlaybackDrained):
            self._finish(turn)
            return
        self._turn_event(turn, event, item.at_ms)
        if isinstance(event, PartialTranscript):
            self._send(PartialTranscriptMessage(turn.number, event.text))
        elif isinstance(event, Transcribed):
            turn.transcript = event.text
            self._send(Transcript(turn.number, event.text))
            self._transition(Trigger.TRANSCRIBED)
        elif isinstance(event, ReplyPiece):
            self._send(ResponseText(turn.number, event.text))
        elif isinstance(event, ReplyDone):
            turn.reply = event.text
            self._send(ResponseDone(turn.number, event.text))
        elif isinstance(event, SegmentAudio):
            self._play(turn, event)
        elif isinstance(event, SpeechDone):
            if turn.playback is None:
                self._finish(turn)
            else:
                turn.playback.close()
        elif isinstance(event, ToolCalled):
            self._send(ToolCallMessage(turn.number, event.id, event.name, event.arguments, event.source))
        elif isinstance(event, ToolReturned):
            self._send(ToolResultMessage(turn.number, event.id, event.name, event.ok, event.text, event.error))
            if event.name in TIMER_TOOLS:
                self._send_timers()
        elif isinstance(event, FallbackUsed):
            stage, provider = event.stage.value, event.provider
            self._send(
                Status(self.state, event.message, turn.number, reason="fallback", stage=stage, provider=provider)
            )
        elif isinstance(event, NothingHeard):
            self._current = None
            message = NOTHING_HEARD_TEXT if self.mode is Mode.PUSH_TO_TALK else NOTHING_HEARD_HANDS_FREE
            self._transition(Trigger.NOTHING_HEARD, message=message, reason="nothing_heard")
        elif isinstance(event, TurnFailed):
            self._cancel_turn()
            self._send(Error(event.code, event.message, turn.number))
            self._transition(Trigger.FAIL, reason="failed")

    def _play(self, turn: _Turn, segment: SegmentAudio) -> None:
        if turn.playback is None:
            turn.playback = Playback(
                self._send_audio,
                segment.sample_rate,
                self._settings.session.audio_frame_ms,
                self._settings.session.audio_lead_ms,
                on_sent=lambda ms: self._post(turn, _PlaybackSent(ms)),
                on_drained=lambda: self._post(turn, _PlaybackDrained()),
            )
            if self.state is State.THINKING:  # an announcement is speaking already
                self._transition(Trigger.SPEAK)
            if self._listener is not None:
                self._listener.set_assistant_speaking(True)
            self._send(AudioStart(turn.number, sample_rate=segment.sample_rate))
            self._turn_event(turn, AudioStarted(segment.sample_rate), turn.at_ms())
        turn.playback.add(segment.text, segment.pcm)

    def _finish(self, turn: _Turn) -> None:
        self._current = None
        if self._listener is not None:
            self._listener.set_assistant_speaking(False)
        if turn.transcript is not None or turn.announcement:
            self._remember(turn.transcript, turn.reply)
        timings = turn.timings.rounded()
        self._turn_event(turn, TurnFinished(timings), turn.at_ms())
        self._send(Metrics(turn.number, timings))
        self._transition(Trigger.FINISH)

    def _turn_event(self, turn: _Turn, event: TurnEvent, at_ms: float | None) -> None:
        """The one place a turn event is logged, recorded, counted in the turn's timings and observed."""
        if at_ms is not None:
            turn.timings.add(event, at_ms)
        self._observer.turn_event(event, at_ms)
        fields = event_fields(event)
        fields.pop("type")
        if isinstance(event, PartialTranscript | ReplyPiece):
            return  # many per turn: the wire and the final events carry them
        level = "warning" if isinstance(event, FallbackUsed | TurnFailed) else "info"
        self._log.turn_event(level, turn.number, event.type, at_ms, fields)

    # --- timers -----------------------------------------------------------------------------------

    def _timer_fired(self, timer: Timer) -> None:
        """Called by the timer board's task: hand the timer to the loop."""
        self._mailbox.put_nowait((_TURN, next(self._sequence), _TimerFired(timer)))

    def _on_timer_fired(self, timer: Timer) -> None:
        self._log.info("timer_fired", timer=timer.id, duration_s=timer.duration_s)
        self._send_timers()
        self._announcements.append(timer_done_announcement(timer))
        self._announce_next()

    def _announce_next(self) -> None:
        """Speak the next waiting announcement, if the session is idle (never over the user's turn)."""
        if self.state is not State.IDLE or not self._announcements:
            return
        text = self._announcements.pop(0)
        turn_ref: list[_Turn] = []
        utterance = self._engine.announce(text, lambda event: self._post(turn_ref[0], event))
        self.turn += 1
        turn = self._current = _Turn(next(self._keys), utterance, self.turn, announcement=True)
        turn_ref.append(turn)
        turn.released_at = time.perf_counter()
        self._transition(Trigger.ANNOUNCE, message=ANNOUNCEMENT_TEXT, reason="timer")
        turn.task = asyncio.create_task(utterance.respond(turn.released_at), name=f"announce-{self.id}-{turn.number}")

    def _send_timers(self) -> None:
        if self.timers is not None:
            now = self.timers.now()
            self._send(TimersMessage([timer.to_dict(now) for timer in self.timers.running()]))

    def _remember(self, user_text: str | None, assistant_text: str) -> None:
        if user_text is not None:
            self.history.append(Message("user", user_text))
        if assistant_text.strip():
            self.history.append(Message("assistant", assistant_text))
        keep = self._settings.session.history_turns * 2
        del self.history[: max(0, len(self.history) - keep)]

    # --- output -----------------------------------------------------------------------------------

    def _transition(self, trigger: Trigger, message: str | None = None, reason: str | None = None) -> None:
        try:
            self.machine.fire(trigger)
        except IllegalTransition:
            self._log.error("illegal_transition", trigger=trigger.value)
            raise
        state = self.state
        self._send(Status(state, message or STATUS_TEXT[state], self.turn, reason=reason))
        if state is State.IDLE:
            self._announce_next()  # a timer that ended during the turn speaks now

    def _log_change(self, change: Change) -> None:
        self._log.info(
            "state_changed",
            source=change.source.value,
            dest=change.dest.value,
            trigger=change.trigger.value,
        )

    def _send(self, event: ServerEvent) -> None:
        if isinstance(event, Error):
            # Provider errors can quote a request, key included: the page gets no secrets either.
            event = replace(event, message=redact_text(event.message))
            self._log.info("error_sent", code=event.code)
            self._observer.error_sent(event.code)
        text = encode_event(event)
        self._recorder.server_event(event, text)
        self._outbox.put(text)

    def _send_audio(self, frame: bytes, offset_ms: float) -> None:
        """Called by the playback task: a client too slow to read is closed from the loop (once; the
        frames in between are dropped, and the playback task is cancelled as the session ends). In
        hands-free mode the frame is also kept as the echo guard's reference, timed for when the
        microphone will hear it (``offset_ms`` into the reply)."""
        if self._slow_client:
            return
        turn = self._current
        if self._listener is not None and turn is not None and turn.playback is not None:
            playback = turn.playback
            heard_at_ms = self._heard_at_ms(self._listener, playback.plays_at(offset_ms) or time.monotonic())
            self._echo_reference.append((audio.resample(frame, playback.sample_rate, INPUT_SAMPLE_RATE), heard_at_ms))
        try:
            self._outbox.put(frame)
        except OutboxFull as exc:
            self._slow_client = True
            self._log.warning("slow_client", reason=str(exc))
            self._client_gone(SLOW_CLIENT)
            return
        self._recorder.reply_audio(frame)


def _listen(
    listener: HandsFreeListener, references: list[tuple[bytes | None, float]], pcm: bytes
) -> list[ListenerEvent]:
    """In a worker thread: give the listener the reply audio played (or cut off) since, then the
    microphone frame."""
    for reference, at_ms in references:
        if reference is None:
            listener.stop_playing(at_ms)
        else:
            listener.play(reference, at_ms)
    return listener.feed(pcm)
