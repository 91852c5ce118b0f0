"""A Hypothesis stateful test of one voice session: random sequences of presses, releases, audio
frames (valid, odd-length, empty, oversized), barge-ins, resets, garbage, failing stages, waits and
disconnects, against the real VoiceSession and PipelineEngine over fast fake stages and an in-memory
transport (no sockets: 40 random sequences of 25 steps run in about 12 s).

Invariants after every step: at most one turn in flight; audio is taken only while listening; the
status messages are exactly the state machine's changes, in order; every error has a documented code;
and at the end the session is either usable (a plain turn is answered) or cleanly closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from tests.securitykit import settings_with
from voicebot.providers.base import Stages
from voicebot.session.loop import VoiceSession
from voicebot.session.machine import Change, State
from voicebot.turn.pipeline import PipelineEngine

pytestmark = pytest.mark.slow  # soaks, property runs or real processes: not in the fast tier

#: Every error code a session may send (docs/protocol.md).
DOCUMENTED_CODES = {
    "invalid_json", "invalid_message", "unknown_action", "bad_audio_frame", "already_listening",
    "not_listening", "asr_failed", "llm_failed", "tts_failed", "internal_error",
}  # fmt: skip
LOUD = b"\x00\x10"
_DISCONNECT = object()


class MemoryTransport:
    """The session's socket, in memory: the test queues client frames and reads what was sent."""

    def __init__(self) -> None:
        self.incoming: asyncio.Queue[object] = asyncio.Queue()
        self.sent: list[dict[str, Any] | bytes] = []

    async def receive(self) -> str | bytes | None:
        frame = await self.incoming.get()
        if frame is _DISCONNECT:
            raise ConnectionResetError("the client went away")
        return frame  # type: ignore[return-value]

    async def send_text(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append(data)


#: Audio frames by name (so a failing example prints a name, not kilobytes).
FRAMES: dict[str, bytes | None] = {
    "10ms": LOUD * 160,  # a valid frame
    "300ms": LOUD * 4800,  # enough speech in one frame for a turn
    "odd": b"\x00\x10\x01",  # half a sample at the end
    "one_byte": b"\x01",
    "empty": None,  # an empty binary frame, as Quart delivers it
    "oversized": LOUD * 40_000,  # longer than the longest utterance allowed (1 s here)
}
GARBAGE = st.sampled_from(
    ["", "[]", "{", '{"action": 3}', '{"action": "dance"}', '{"action": "start_listening", "played_ms": -1}']
)


class SessionMachineTest(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.asr, self.llm, self.tts = FakeASR(), FakeLLM(), FakeTTS(ms_per_char=1.0, chunk_ms=10)
        settings_ = settings_with(
            session={"max_utterance_s": 1.0, "audio_frame_ms": 10, "audio_lead_ms": 5},
            limits={"malformed_messages": 10_000, "control_messages_per_s": 10_000, "idle_timeout_s": 0},
        )
        engine = PipelineEngine(Stages(self.asr, self.llm, self.tts), settings_.session)
        self.transport = MemoryTransport()
        self.session = VoiceSession(self.transport, engine, settings_)
        self.changes: list[Change] = []
        log_change = self.session.machine._on_change
        assert log_change is not None

        def on_change(change: Change) -> None:
            self.changes.append(change)
            log_change(change)

        self.session.machine._on_change = on_change
        self.run_task = self.loop.create_task(self.session.run())
        self.closed = False
        self.settle()

    # --- driving -----------------------------------------------------------------------------------

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def settle(self) -> None:
        """Let the session take every queued client frame (turn work may still be running)."""

        async def settled() -> None:
            for _ in range(10_000):
                await asyncio.sleep(0)
                if self.transport.incoming.empty() and self.session._pending_client_frames == 0:
                    break
            for _ in range(5):
                await asyncio.sleep(0)

        self.run(settled())

    def send(self, frame: object) -> None:
        self.transport.incoming.put_nowait(frame)
        self.settle()

    def action(self, name: str, **fields: Any) -> None:
        self.send(json.dumps({"action": name, **fields}))

    # --- rules -------------------------------------------------------------------------------------

    @precondition(lambda self: not self.closed)
    @rule(played_ms=st.one_of(st.none(), st.integers(0, 10_000)))
    def press(self, played_ms: int | None) -> None:
        self.action("start_listening", **({} if played_ms is None else {"played_ms": played_ms}))

    @precondition(lambda self: not self.closed)
    @rule()
    def release(self) -> None:
        self.action("stop_listening")

    @precondition(lambda self: not self.closed)
    @rule(name=st.sampled_from(sorted(FRAMES)))
    def audio(self, name: str) -> None:
        frame = FRAMES[name]
        listening = self.session.state is State.LISTENING
        dropped = self.session.dropped_audio_frames
        turn = self.session._current
        before = turn.pcm_bytes if turn is not None else 0
        self.send(frame)
        if not frame or len(frame) % 2:
            assert self.session.dropped_audio_frames == dropped  # rejected with an error, not taken
        elif listening:
            assert turn is not None and turn.pcm_bytes == before + len(frame)
            assert self.session.dropped_audio_frames == dropped
        else:
            assert self.session.dropped_audio_frames == dropped + 1

    @precondition(lambda self: not self.closed)
    @rule()
    def reset(self) -> None:
        self.action("reset")

    @precondition(lambda self: not self.closed)
    @rule(text=GARBAGE)
    def garbage(self, text: str) -> None:
        self.send(text)

    @precondition(lambda self: not self.closed)
    @rule(asr=st.booleans(), llm=st.sampled_from([None, 0, 2]), tts=st.booleans())
    def break_stages(self, asr: bool, llm: int | None, tts: bool) -> None:
        self.asr.fail, self.llm.fail_after, self.tts.fail = asr, llm, tts

    @precondition(lambda self: not self.closed)
    @rule(ms=st.integers(1, 60))
    def wait(self, ms: int) -> None:
        self.run(asyncio.sleep(ms / 1000))
        self.settle()

    @precondition(lambda self: not self.closed)
    @rule()
    def disconnect(self) -> None:
        self.send(_DISCONNECT)
        self.run(asyncio.wait_for(self.run_task, 5))
        self.closed = True

    @precondition(lambda self: self.closed)
    @rule()
    def after_close(self) -> None:
        """A closed session stays closed: its run ended without an error and its turn work is gone."""
        assert self.run_task.done() and self.run_task.exception() is None
        self.run(asyncio.sleep(0.001))
        assert not [t for t in asyncio.all_tasks(self.loop) if t.get_name().startswith("turn-") and not t.done()]

    # --- invariants --------------------------------------------------------------------------------

    @invariant()
    def at_most_one_turn_in_flight(self) -> None:
        turns = [t for t in asyncio.all_tasks(self.loop) if t.get_name().startswith(f"turn-{self.session.id}")]
        assert len([t for t in turns if not t.done()]) <= 1

    @invariant()
    def statuses_mirror_the_machine(self) -> None:
        # What was sent and what is still queued in the outbox (its writer may not have run yet).
        queued = [json.loads(f) for f in self.session._outbox._queue._queue if isinstance(f, str)]  # type: ignore[attr-defined]
        statuses = [m for m in [*self.transport.sent, *queued] if isinstance(m, dict) and m["type"] == "status"]
        assert statuses[0]["state"] == "idle" and statuses[0].get("session_id") == self.session.id
        assert [s["state"] for s in statuses[1:]] == [c.dest.value for c in self.changes]
        assert statuses[-1]["state"] == self.session.state.value

    @invariant()
    def errors_have_documented_codes(self) -> None:
        codes = {m["code"] for m in self.transport.sent if isinstance(m, dict) and m["type"] == "error"}
        assert codes <= DOCUMENTED_CODES

    def teardown(self) -> None:
        try:
            if not self.closed:  # usable: a plain turn with working stages is answered
                self.asr.fail, self.llm.fail_after, self.tts.fail = False, None, False
                self.action("reset")
                start = len(self.transport.sent)
                self.action("start_listening")
                self.send(LOUD * 8000)
                self.action("stop_listening")

                async def answered() -> None:
                    while not any(  # noqa: ASYNC110 - polling what the session sent
                        isinstance(m, dict) and m.get("state") == "idle" for m in self.transport.sent[start:]
                    ):
                        await asyncio.sleep(0.005)

                self.run(asyncio.wait_for(answered(), 5))
                done = [m for m in self.transport.sent[start:] if isinstance(m, dict) and m["type"] == "response_done"]
                assert done and done[-1]["text"] == "Hello! This is a fake reply."
                self.send(_DISCONNECT)
                self.run(asyncio.wait_for(self.run_task, 5))
            assert self.run_task.done() and self.run_task.exception() is None
            self.run(asyncio.sleep(0.01))
            assert [t for t in asyncio.all_tasks(self.loop) if not t.done()] == []  # nothing leaked
        finally:
            self.loop.close()


SessionMachineTest.TestCase.settings = settings(
    max_examples=40, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestSession = SessionMachineTest.TestCase
