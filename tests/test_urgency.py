"""Work somebody is waiting for goes first: while a turn is on its way to its first audio, another
reply that is far ahead of its listener waits (its synthesis and its model), and partial transcripts
wait; all of it goes on once that turn speaks. Fake stages, for the timing; the embedded model's
pausing is tested in tests/providers/test_llama_batch.py, and what it buys is measured by
``voicebot bench --sessions 4``. When turns wait for the cores, the one needed first is served first."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from tests.test_recognition import FRAME, ScriptedStream, settle
from voicebot.providers.base import Stages
from voicebot.settings import SessionSettings
from voicebot.threads import Cores, run_blocking
from voicebot.turn.events import ReplyPiece, SegmentAudio, SpeechDone, TurnEvent
from voicebot.turn.pipeline import PipelineEngine
from voicebot.turn.recognition import StreamingRecognition
from voicebot.turn.urgency import FIRST_AUDIO_WITHIN_S, WRITE_AHEAD_S, ReplyLead, Urgency

SPEECH = b"\x00\x10" * 16_000  # 1 s, loud enough for the silence gate
STORY = (
    "Once upon a time there was a dragon. ",
    "It lived under an old mountain. ",
    "Every night it counted its gold. ",
    "One night a coin was missing. ",
)


async def until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_a_turn_presses_until_released_once() -> None:
    urgency = Urgency()
    first, second = urgency.hold(), urgency.hold()
    assert urgency.pressing
    first()
    first()  # twice is once
    assert urgency.pressing
    second()
    assert not urgency.pressing


async def test_a_lead_waits_only_while_another_turn_presses_and_only_as_long_as_it_has_audio_to_spare() -> None:
    urgency = Urgency()
    lead = ReplyLead(urgency, ahead_ms=100)
    assert lead.ms() == 0 and not lead.can_wait()  # nothing ready yet: never waits
    lead.add(400)
    assert 300 < lead.ms() <= 400
    assert not lead.can_wait()  # nobody presses
    release = urgency.hold()
    assert lead.can_wait()
    started = time.monotonic()
    await lead.until_needed()  # nobody lets go: it waits until only 100 ms are left
    assert 0.2 < time.monotonic() - started < 0.4
    assert lead.ms() <= 100 and not lead.can_wait()
    lead.add(400)
    waiting = asyncio.create_task(lead.until_needed())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    release()  # the pressing turn speaks: the wait ends at once
    await asyncio.wait_for(waiting, 0.05)
    assert not ReplyLead(urgency, ahead_ms=0).can_wait()


async def test_a_story_far_ahead_of_its_listener_waits_while_another_turn_gets_its_first_audio() -> None:
    asr = FakeASR(text="Tell me a story.")
    llm = FakeLLM(pieces=STORY, delay_s=0.15)  # a sentence every 150 ms
    tts = FakeTTS(ms_per_char=60)  # ~2 s of audio a sentence, synthesised at once
    engine = PipelineEngine(Stages(asr=asr, llm=llm, tts=tts), SessionSettings(wait_ahead_ms=500))
    story: list[TurnEvent] = []
    telling = engine.listen([], story.append)
    telling.feed(SPEECH)
    answering = asyncio.create_task(telling.respond(time.perf_counter()))
    await until(lambda: any(isinstance(event, SegmentAudio) for event in story))
    assert not engine.urgency.pressing  # the story has its first audio
    assert llm.options[0].may_pause is not None and not llm.options[0].may_pause()

    asr.delay_s = 0.3  # another session's turn: its transcript takes a while
    spoken_before_first_audio: list[str] = []
    written_before_first_audio: list[TurnEvent] = []

    def other(event: TurnEvent) -> None:
        if isinstance(event, SegmentAudio) and event.index == 0:
            spoken_before_first_audio.extend(tts.spoken)
            written_before_first_audio.extend(event for event in story if isinstance(event, ReplyPiece))

    question = engine.listen([], other)
    question.feed(SPEECH)
    asked = asyncio.create_task(question.respond(time.perf_counter()))
    await until(lambda: engine.urgency.pressing)
    spoken_when_pressed = len(tts.spoken)
    assert llm.options[0].may_pause()  # the story's model may pause now
    await until(lambda: spoken_before_first_audio)
    # While the other turn waited for its first audio, only its own first segment was synthesised,
    # though the story's model wrote more sentences meanwhile ...
    assert spoken_before_first_audio[spoken_when_pressed:] == ["Once upon a time"]
    assert len(written_before_first_audio) >= 3
    # ... and the story went on as soon as that turn spoke, to its end.
    await asyncio.wait_for(asyncio.gather(answering, asked), 5)
    assert any(isinstance(event, SpeechDone) for event in story)
    told = " ".join(event.text for event in story if isinstance(event, SegmentAudio))
    assert told == " ".join(sentence.strip() for sentence in STORY)


async def test_partial_transcripts_wait_while_another_turn_presses() -> None:
    stream = ScriptedStream()
    stream.release.set()
    urgency = Urgency()
    events: list[TurnEvent] = []
    recognition = StreamingRecognition(stream, FakeASR(), events.append, partial_interval_ms=200, urgency=urgency)
    release = urgency.hold()
    for _ in range(5):
        recognition.feed(FRAME)
    await settle()
    await asyncio.sleep(0.05)
    assert stream.passes == 0
    release()
    await until(lambda: stream.passes == 1)
    await recognition.aclose()


class OneCoreASR(FakeASR):
    """A recogniser whose pass needs the one core of ``cores``; each utterance (told apart by its
    loudness) may take a while before it asks for it."""

    def __init__(self, cores: Cores, asks_after_s: dict[bytes, float]) -> None:
        super().__init__()
        self.cores = cores
        self.asks_after_s = asks_after_s
        self.served: list[bytes] = []

    async def transcribe(self, pcm: bytes, sample_rate: int) -> str:
        await asyncio.sleep(self.asks_after_s[pcm[:2]])

        def recognise() -> str:
            with self.cores.call():
                self.served.append(pcm[:2])
            return "What time is it?"

        return await run_blocking(recognise)


async def test_when_turns_wait_for_the_cores_the_one_that_began_first_is_served_first() -> None:
    first, second = b"\x00\x10", b"\x00\x20"
    cores = Cores(1)
    asr = OneCoreASR(cores, {first: 0.15, second: 0.0})
    engine = PipelineEngine(Stages(asr=asr, llm=FakeLLM(), tts=FakeTTS()), SessionSettings())
    cores.take()  # the core is busy while both turns begin
    answers = []
    for speech in (first, second):
        utterance = engine.listen([], lambda event: None)
        utterance.feed(speech * 16_000)
        answers.append(asyncio.create_task(utterance.respond(time.perf_counter())))
        await asyncio.sleep(0.02)
    await until(lambda: cores.waiting() == 2)  # the second turn asked first ...
    cores.give()
    await asyncio.wait_for(asyncio.gather(*answers), 5)
    assert asr.served == [first, second]  # ... the first turn, needed sooner, got the core first


def test_a_replys_work_is_needed_soon_after_it_begins_then_when_its_audio_runs_out() -> None:
    lead = ReplyLead(Urgency(), ahead_ms=1500)
    assert lead.deadline() - time.monotonic() <= FIRST_AUDIO_WITHIN_S
    assert lead.text_deadline() == lead.deadline()  # the first words: both needed at once
    lead.add(2000)
    assert 1.9 < lead.deadline() - time.monotonic() <= 2.0
    # The model must go on writing a while before the audio runs out: what it writes is still to
    # be synthesised.
    assert lead.deadline() - lead.text_deadline() == pytest.approx(WRITE_AHEAD_S)
