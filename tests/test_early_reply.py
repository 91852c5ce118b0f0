"""A reply prepared while the user pauses (hands-free): held until the end of the turn is decided,
let out at once then, dropped if the user goes on, and never running a tool before the end. Fake
stages; the real detector's pause events are tested in tests/vad/test_handsfree.py and the whole
path over a real server in tests/test_hands_free.py."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot.errors import Stage
from voicebot.providers.base import Message, Stages
from voicebot.settings import SessionSettings
from voicebot.tools.base import ToolContext
from voicebot.tools.settings import ToolsSettings
from voicebot.tools.timers import ManualClock, TimerBoard
from voicebot.turn.engine import TurnContext, Utterance
from voicebot.turn.events import (
    EarlyReply,
    SegmentAudio,
    SpeechDone,
    StageEnded,
    StageStarted,
    ToolCalled,
    Transcribed,
    TurnEvent,
)
from voicebot.turn.pipeline import PipelineEngine
from voicebot.turn.tools import Toolbox

SPEECH = b"\x00\x10" * 16_000  # 1 s, loud enough for the silence gate
SILENCE = b"\x00\x00" * 5_600  # the 350 ms of end silence still to come after the pause


def engine(asr: FakeASR, toolbox: Toolbox | None = None) -> PipelineEngine:
    stages = Stages(asr=asr, llm=FakeLLM(), tts=FakeTTS())  # type: ignore[arg-type]
    return PipelineEngine(stages, SessionSettings(), toolbox)


async def until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def speak_then_pause(utterance: Utterance, asr: FakeASR) -> None:
    """A second of speech, then the pause that starts preparing the reply (its transcript taken)."""
    utterance.feed(SPEECH)
    utterance.expect_end()
    await until(lambda: asr.calls == 1)


async def test_a_reply_prepared_in_a_pause_is_held_then_let_out_at_once_when_the_end_is_decided() -> None:
    asr = FakeASR(text="What is the capital of France?")
    events: list[TurnEvent] = []
    utterance = engine(asr).listen([], events.append)
    await speak_then_pause(utterance, asr)
    await asyncio.sleep(0.2)  # the model and the first sentence's synthesis run meanwhile
    assert events == []  # nothing leaves before the end is decided
    utterance.feed(SILENCE)
    ended_at = time.perf_counter()
    await utterance.respond(ended_at)
    await utterance.aclose()

    early = events[0]
    assert isinstance(early, EarlyReply) and early.lead_ms >= 200
    assert asr.calls == 1  # the pause's transcript is the turn's: no second pass at the end
    # Stage times count from the end of the turn: what ran in the pause started before it.
    (asr_started,) = [e for e in events if isinstance(e, StageStarted) and e.stage is Stage.ASR]
    assert asr_started.at_ms <= -200
    kinds = [event.type for event in events[1:]]
    assert kinds[:3] == ["stage_started", "stage_ended", "transcript"] and kinds[-1] == "speech_done"
    assert [e.text for e in events if isinstance(e, SegmentAudio)] == ["Hello!", "This is a fake reply."]
    (first_tts,) = [e for e in events if isinstance(e, StageEnded) and e.stage is Stage.TTS and e.call == 1]
    assert first_tts.at_ms < 0  # the first sentence's audio was ready before the end


async def test_speech_after_the_pause_drops_what_was_prepared() -> None:
    asr = FakeASR(text="What is the capital")
    events: list[TurnEvent] = []
    utterance = engine(asr).listen([], events.append)
    await speak_then_pause(utterance, asr)
    await asyncio.sleep(0.1)
    utterance.resume()  # "... of France?"
    asr.text = "What is the capital of France?"
    utterance.feed(SPEECH)
    await utterance.respond(time.perf_counter())
    await utterance.aclose()

    assert not any(isinstance(event, EarlyReply) for event in events)
    assert asr.calls == 2  # the end transcribes the whole utterance again
    assert [e.text for e in events if isinstance(e, Transcribed)] == ["What is the capital of France?"]
    assert sum(isinstance(event, SpeechDone) for event in events) == 1
    stage_calls = [(e.stage, e.call) for e in events if isinstance(e, StageStarted)]
    assert stage_calls.count((Stage.ASR, 1)) == 1  # nothing of the dropped preparation leaked out


async def test_no_tool_that_acts_runs_before_the_end_is_decided() -> None:
    """ "Set a timer for ten..." and a pause: the timer is set only once the user is done (they may
    still say "minutes"), and then at once, from what was prepared."""
    board = TimerBoard(clock=ManualClock())
    box = Toolbox.from_settings(ToolsSettings(), timer_clock=board.clock)
    asr = FakeASR(text="Set a timer for ten seconds.")
    events: list[TurnEvent] = []
    context = TurnContext(tools=ToolContext(timers=board))
    utterance = engine(asr, box).listen([Message("user", "Hi.")], events.append, context)
    await speak_then_pause(utterance, asr)
    await asyncio.sleep(0.2)
    assert len(board) == 0 and events == []
    await utterance.respond(time.perf_counter())
    await utterance.aclose()
    assert len(board) == 1
    assert isinstance(events[0], EarlyReply)
    (called,) = [e for e in events if isinstance(e, ToolCalled)]
    assert called.name == "set_timer"
    board.cancel_all()


async def test_a_tool_that_only_looks_up_answers_in_the_pause() -> None:
    """ "What time is it?" and a pause: the clock is read and the answer synthesised before the end is
    decided, so it is ready at the release like a model's reply; dropped if the user goes on."""
    box = Toolbox.from_settings(ToolsSettings())
    noon = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    context = TurnContext(tools=ToolContext(time_zone="UTC", clock=lambda: noon))
    asr = FakeASR(text="What time is it?")
    events: list[TurnEvent] = []
    utterance = engine(asr, box).listen([], events.append, context)
    await speak_then_pause(utterance, asr)
    await asyncio.sleep(0.2)
    assert events == []  # held until the end is decided
    await utterance.respond(time.perf_counter())
    await utterance.aclose()

    assert isinstance(events[0], EarlyReply)
    (called,) = [e for e in events if isinstance(e, ToolCalled)]
    assert called.name == "get_time" and called.source == "intent"
    assert [e.text for e in events if isinstance(e, SegmentAudio)] == ["It's 12:00 PM."]
    (first_tts,) = [e for e in events if isinstance(e, StageEnded) and e.stage is Stage.TTS and e.call == 1]
    assert first_tts.at_ms < 0  # the answer's audio was ready before the end


async def test_a_barge_in_while_a_prepared_reply_plays_cancels_its_work() -> None:
    asr = FakeASR(text="Tell me a story.")
    slow = FakeLLM(pieces=("Once upon a time. ", *["There was a fox. "] * 50), delay_s=0.02)
    stages = Stages(asr=asr, llm=slow, tts=FakeTTS())  # type: ignore[arg-type]
    events: list[TurnEvent] = []
    utterance = PipelineEngine(stages, SessionSettings()).listen([], events.append)
    await speak_then_pause(utterance, asr)
    turn = asyncio.create_task(utterance.respond(time.perf_counter()))
    await until(lambda: any(isinstance(e, SegmentAudio) for e in events))
    turn.cancel()  # the user spoke over the reply
    await asyncio.gather(turn, return_exceptions=True)
    await utterance.aclose()
    count = len(events)
    await asyncio.sleep(0.2)
    assert len(events) == count  # the prepared work stopped with the turn
    assert not any(isinstance(event, SpeechDone) for event in events)
