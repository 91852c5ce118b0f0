"""The turn on its own: the event vocabulary reads back what it writes, the pipeline engine emits the
right sequence with fake stages (synthetic PCM, no models, no waiting), and the timing summary is
derived from the events alone."""

from __future__ import annotations

import time

import pytest

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot.errors import Stage
from voicebot.providers.base import Message, Stages
from voicebot.providers.fallback import FallbackLLM
from voicebot.settings import SessionSettings, StageTimeouts
from voicebot.turn.events import (
    EVENT_TYPES,
    AudioStarted,
    EarlyReply,
    FallbackUsed,
    Interrupted,
    NothingHeard,
    PartialTranscript,
    ReplyDone,
    ReplyPiece,
    SegmentAudio,
    SpeechDone,
    StageEnded,
    StageStarted,
    ToolCalled,
    ToolReturned,
    Transcribed,
    TurnEvent,
    TurnFailed,
    TurnFinished,
    event_fields,
    event_from_fields,
)
from voicebot.turn.outcome import TurnOutcome
from voicebot.turn.pipeline import PipelineEngine
from voicebot.turn.timing import TurnTimings

SPEECH = b"\x00\x10" * 16_000  # 1 s, loud enough for the silence gate
SAMPLES: list[TurnEvent] = [
    StageStarted(Stage.ASR, 1, 0.0),
    StageEnded(Stage.LLM, 2, 812.2, 300.5, 40.0, None),
    StageEnded(Stage.TTS, 1, 90.0, 10.0, None, "cancelled"),
    EarlyReply(342.5),
    PartialTranscript("what is"),
    Transcribed("What is it?"),
    NothingHeard("silence"),
    ReplyPiece(" Paris"),
    ReplyDone("Paris."),
    SegmentAudio(0, "Paris.", b"", 22_050),
    SpeechDone(),
    FallbackUsed(Stage.LLM, "llama_cpp", (("anthropic", "the API key was refused (HTTP 401)"),)),
    TurnFailed("llm_failed", "The language model failed: boom", Stage.LLM),
    ToolCalled("toolu_1", "calculator", {"expression": "12 * 7", "precision": 0.5}, "model"),
    ToolReturned("toolu_1", "calculator", True, "84", "12 times 7 is 84.", None, 0.4, {"value": 84}),
    AudioStarted(22_050),
    Interrupted("Paris, the", 1300),
    TurnFinished({"asr_ms": 41.0, "first_audio_ms": 280.5}),
]


def test_every_event_type_has_a_sample_here() -> None:
    assert {event.type for event in SAMPLES} == set(EVENT_TYPES)


@pytest.mark.parametrize("event", SAMPLES, ids=lambda event: event.type)
def test_an_event_reads_back_what_it_writes(event: TurnEvent) -> None:
    assert event_from_fields(event_fields(event)) == event


def test_audio_is_written_as_its_length_not_its_bytes() -> None:
    fields = event_fields(SegmentAudio(2, "Hi.", b"\x00\x00" * 1600, 16_000))
    assert fields == {"type": "segment_audio", "index": 2, "text": "Hi.", "sample_rate": 16_000, "duration_ms": 100.0}
    assert event_from_fields({"type": "from_a_newer_version"}) is None


def engine(asr: FakeASR | None = None, llm: object | None = None, streaming: bool = True) -> PipelineEngine:
    stages = Stages(asr=asr or FakeASR(), llm=llm or FakeLLM(), tts=FakeTTS())  # type: ignore[arg-type]
    return PipelineEngine(stages, SessionSettings(streaming=streaming))


async def run_turn(turn_engine: PipelineEngine, pcm: bytes = SPEECH) -> list[TurnEvent]:
    events: list[TurnEvent] = []
    utterance = turn_engine.listen([Message("user", "Hi."), Message("assistant", "Hello.")], events.append)
    for start in range(0, len(pcm), 640):
        utterance.feed(pcm[start : start + 640])
    await utterance.respond(time.perf_counter())
    await utterance.aclose()
    return events


async def test_a_streaming_turn_emits_its_events_in_order() -> None:
    events = await run_turn(engine())
    kinds = [event.type for event in events]
    assert kinds[:3] == ["stage_started", "stage_ended", "transcript"]
    assert kinds[-1] == "speech_done"
    segments = [event for event in events if isinstance(event, SegmentAudio)]
    assert [segment.text for segment in segments] == ["Hello!", "This is a fake reply."]
    assert [segment.index for segment in segments] == [0, 1]
    assert all(segment.duration_ms == pytest.approx(len(segment.text) * 5) for segment in segments)
    # The first segment is spoken while the model still writes: it comes before the reply ends.
    assert kinds.index("segment_audio") < kinds.index("reply")
    (reply,) = [event for event in events if isinstance(event, ReplyDone)]
    assert reply.text == "".join(e.text for e in events if isinstance(e, ReplyPiece)) == "Hello! This is a fake reply."
    tts_calls = [event for event in events if isinstance(event, StageEnded) and event.stage is Stage.TTS]
    assert [call.call for call in tts_calls] == [1, 2] and all(call.error is None for call in tts_calls)


async def test_naive_mode_speaks_once_the_whole_reply_is_written() -> None:
    events = await run_turn(engine(streaming=False))
    kinds = [event.type for event in events]
    assert kinds.index("reply") < kinds.index("segment_audio")
    assert [e.text for e in events if isinstance(e, SegmentAudio)] == ["Hello! This is a fake reply."]


@pytest.mark.parametrize(
    ("pcm", "why"), [(SPEECH[:3200], "too_short"), (b"\x00\x00" * 16_000, "silence")], ids=["short", "quiet"]
)
async def test_no_speech_ends_the_turn_without_asking_asr(pcm: bytes, why: str) -> None:
    asr = FakeASR()
    events = await run_turn(engine(asr=asr), pcm)
    assert events == [NothingHeard(why)] and asr.calls == 0


async def test_no_words_from_asr_is_nothing_heard() -> None:
    events = await run_turn(engine(asr=FakeASR(text="[BLANK_AUDIO]")))
    assert events[-1] == NothingHeard("no_words")


async def test_a_failing_stage_is_one_failure_event_with_its_code() -> None:
    events = await run_turn(engine(llm=FakeLLM(fail_after=1)))
    assert isinstance(events[-1], TurnFailed)
    assert (events[-1].code, events[-1].stage) == ("llm_failed", Stage.LLM)
    assert "fake LLM failed" in events[-1].message
    assert not any(isinstance(event, SpeechDone) for event in events)


async def test_a_fallback_is_an_event_of_this_turn_only_once_per_provider() -> None:
    timeouts = StageTimeouts(first_byte_s=1, total_s=5)
    llm = FallbackLLM([FakeLLM(fail_after=0, name="first"), FakeLLM(name="second")], timeouts)
    events = await run_turn(engine(llm=llm))
    assert [e for e in events if isinstance(e, FallbackUsed)] == [
        FallbackUsed(Stage.LLM, "second", (("first", "fake LLM failed"),))
    ]
    again = await run_turn(engine(llm=llm))  # another turn: told again, by its own view of the stage
    assert sum(isinstance(e, FallbackUsed) for e in again) == 1


def test_the_summary_is_derived_from_the_events() -> None:
    timings = TurnTimings()
    for event, at in [
        (StageEnded(Stage.ASR, 1, 45.0, 45.0), 45.0),
        (StageEnded(Stage.TTS, 1, 160.0, 30.0, 25.0), 160.0),
        (SegmentAudio(0, "Hi.", b"", 16_000), 160.0),
        (AudioStarted(16_000), 161.5),
        (StageEnded(Stage.TTS, 2, 200.0, 20.0, 15.0), 200.0),
        (StageEnded(Stage.LLM, 1, 400.0, 350.0, 60.0), 400.0),
        (StageEnded(Stage.TTS, 3, 300.0, 5.0, None, "cancelled"), 300.0),
    ]:
        timings.add(event, at)
    assert timings.rounded() == {
        "asr_ms": 45.0,
        "tts_ms": 50.0,
        "tts_first_audio_ms": 25.0,
        "first_segment_ms": 160.0,
        "first_audio_ms": 161.5,
        "llm_ms": 350.0,
        "llm_first_token_ms": 60.0,
    }


def test_the_outcome_of_a_turn_is_read_from_its_events() -> None:
    outcome = TurnOutcome()
    for event in (Transcribed("Hi?"), ReplyDone("Hello."), Interrupted("Hel", 300)):
        outcome.add(event)
    assert (outcome.outcome, outcome.transcript, outcome.reply, outcome.heard) == (
        "interrupted",
        "Hi?",
        "Hello.",
        "Hel",
    )
    failed = TurnOutcome()
    failed.add(TurnFailed("asr_failed", "no"))
    assert failed.outcome == "failed" and failed.error == "asr_failed"
