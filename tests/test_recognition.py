"""Recognition while the user speaks, with a scripted stream (no model, no waiting): partials come
with enough new audio, never two passes at once, and a stream that fails hands the whole utterance to
the stage's batch path. Real-model checks are in tests/test_streaming_asr.py."""

from __future__ import annotations

import asyncio

from tests.fakes import FakeASR
from voicebot.turn.events import PartialTranscript, TurnEvent
from voicebot.turn.recognition import PARTIAL_SHARE, BatchRecognition, StreamingRecognition, start_recognition

FRAME = b"\x00\x10" * 1600  # 100 ms


class ScriptedStream:
    """Says how many bytes it has heard; each pass waits until the test lets it finish."""

    def __init__(self, fail_finish: bool = False) -> None:
        self.fed = 0
        self.passes = 0
        self.running = 0
        self.most_at_once = 0
        self.release = asyncio.Event()
        self.fail_finish = fail_finish

    def feed(self, pcm: bytes) -> None:
        self.fed += len(pcm)

    async def partial(self) -> str:
        self.passes += 1
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await self.release.wait()
            return f"heard {self.fed // 3200} frames"
        finally:
            self.running -= 1

    async def finish(self) -> str:
        if self.fail_finish:
            raise RuntimeError("stream broke")
        return f"final {self.fed // 3200} frames"


class StreamingFake(FakeASR):
    def __init__(self, stream: ScriptedStream) -> None:
        super().__init__(text="from the batch path")
        self.stream = stream

    def open_stream(self, sample_rate: int = 16_000) -> ScriptedStream:
        return self.stream


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_partials_come_with_enough_new_audio_and_never_two_at_once() -> None:
    stream, events = ScriptedStream(), []
    recognition = StreamingRecognition(stream, FakeASR(), events.append, partial_interval_ms=300)
    recognition.feed(FRAME)
    recognition.feed(FRAME)
    await settle()
    assert stream.passes == 0  # 200 ms: not yet
    recognition.feed(FRAME)
    await settle()
    assert stream.passes == 1  # 300 ms of new audio: one pass starts
    for _ in range(6):  # more audio while the pass runs: no second pass at the same time
        recognition.feed(FRAME)
    await settle()
    assert stream.passes == 1
    stream.release.set()
    await settle()
    assert events[0] == PartialTranscript("heard 9 frames")
    assert stream.passes == 2 and stream.most_at_once == 1  # the audio that came meanwhile: one more pass
    assert await recognition.finish(FRAME * 9) == "final 9 frames"
    await recognition.aclose()


async def test_slow_partials_get_sparser() -> None:
    """A pass that took 80 ms (a busy machine) waits for 80 / PARTIAL_SHARE = 400 ms of new audio
    before the next, where the interval alone asks for 200 ms."""

    class Slow(ScriptedStream):
        async def partial(self) -> str:
            self.passes += 1
            await asyncio.sleep(0.08)
            return f"pass {self.passes}"

    assert PARTIAL_SHARE == 0.2
    stream, events = Slow(), []
    recognition = StreamingRecognition(stream, FakeASR(), events.append, partial_interval_ms=200)
    for _ in range(2):
        recognition.feed(FRAME)
    await settle()
    assert stream.passes == 1
    await asyncio.sleep(0.15)  # the pass ends
    assert events == [PartialTranscript("pass 1")]
    for _ in range(3):  # 300 ms: more than the interval, not enough after a slow pass
        recognition.feed(FRAME)
        await settle()
    assert stream.passes == 1
    for _ in range(3):  # 600 ms
        recognition.feed(FRAME)
    await settle()
    assert stream.passes == 2
    await recognition.aclose()


async def test_the_same_partial_is_not_sent_twice() -> None:
    class Steady(ScriptedStream):
        async def partial(self) -> str:
            self.passes += 1
            return "hello there"

    stream, events = Steady(), []
    recognition = StreamingRecognition(stream, FakeASR(), events.append, partial_interval_ms=100)
    for _ in range(3):
        recognition.feed(FRAME)
        await settle()
    assert stream.passes == 3 and events == [PartialTranscript("hello there")]
    await recognition.aclose()


async def test_a_failing_stream_hands_the_utterance_to_the_batch_path() -> None:
    events: list[TurnEvent] = []
    stage = StreamingFake(ScriptedStream(fail_finish=True))
    recognition = start_recognition(stage, events.append, partial_interval_ms=0)
    assert isinstance(recognition, StreamingRecognition)
    recognition.feed(FRAME)
    assert await recognition.finish(FRAME) == "from the batch path"
    assert stage.calls == 1


def test_a_batch_provider_gets_the_batch_adapter() -> None:
    assert isinstance(start_recognition(FakeASR(), lambda event: None), BatchRecognition)
