"""While the user speaks, the conversation is read into the model's cache: the history when the turn
opens, then the user's words as partial transcripts come in (all but the last word, which may still
change), and nothing once the reply begins. Fake stages here; that the embedded model then reads only
the rest, and says the same, is tested in tests/providers/test_llama_batch.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tests.fakes import FakeLLM, FakeTTS
from tests.test_recognition import FRAME, ScriptedStream, StreamingFake, settle
from voicebot.providers.base import NO_OPTIONS, Message, ReplyOptions, Stages
from voicebot.settings import SessionSettings
from voicebot.turn.events import PartialTranscript, TurnEvent
from voicebot.turn.pipeline import PipelineEngine


@dataclass
class ReadingLLM(FakeLLM):
    """A fake model that can read ahead, as the embedded one does: it records what it was given."""

    reads: list[tuple[list[Message], bool]] = field(default_factory=list)
    stopped: int = 0

    def read_ahead(
        self, history: Sequence[Message], options: ReplyOptions = NO_OPTIONS, unfinished: bool = False
    ) -> Callable[[], None]:
        self.reads.append((list(history), unfinished))

        def stop() -> None:
            self.stopped += 1

        return stop


async def test_the_users_words_are_read_ahead_as_they_come_and_nothing_once_the_reply_begins() -> None:
    stream = ScriptedStream()
    stream.release.set()
    llm = ReadingLLM()
    stages = Stages(asr=StreamingFake(stream), llm=llm, tts=FakeTTS())
    engine = PipelineEngine(stages, SessionSettings(), partial_interval_ms=300)
    history = [Message("user", "Hi"), Message("assistant", "Hello!")]
    events: list[TurnEvent] = []
    utterance = engine.listen(history, events.append)
    assert llm.reads == [(history, False)]  # the conversation so far, at once
    for _ in range(3):
        utterance.feed(FRAME)
    await settle()
    assert PartialTranscript("heard 3 frames") in events
    assert llm.reads[-1] == ([*history, Message("user", "heard 3")], True)  # all but the last word
    for _ in range(3):
        utterance.feed(FRAME)
    await settle()
    assert llm.reads[-1] == ([*history, Message("user", "heard 6")], True)
    assert llm.stopped == len(llm.reads) - 1  # each reading gave way to the next
    reads_before_reply = len(llm.reads)
    await utterance.respond(time.perf_counter())
    assert llm.seen == [[*history, Message("user", "final 6 frames")]]
    assert llm.stopped == reads_before_reply  # the last reading stopped when the reply began
    assert len(llm.reads) == reads_before_reply
    await utterance.aclose()
