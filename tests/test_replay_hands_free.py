"""A hands-free session replays its messages. ``tests/data/recordings-hands-free`` holds a session
recorded from the page in hands-free mode: one question, heard by the server's voice detector,
answered, and the user starting to speak over the answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot.providers.base import Stages
from voicebot.recording.reader import find_recording, load_recording
from voicebot.recording.replay import client_steps, replay_messages
from voicebot.settings import Settings

HANDS_FREE = Path(__file__).parent / "data" / "recordings-hands-free"
SESSION = "8ddd68767ce24b33"
QUESTION = "Tell me about Paris, the capital of France."


def test_an_utterance_heard_hands_free_follows_what_was_said_before_its_sound() -> None:
    """The first frame of a hands-free utterance holds the sound from before the voice was heard, and
    it was recorded just after the "listening" status that this sound caused. It follows the
    status before it (the mode change), else a replay waits for an event only the frame can cause."""
    steps = client_steps(load_recording(find_recording(SESSION, HANDS_FREE)))
    first_audio = next(step for step in steps if isinstance(step.data, bytes))
    assert len(first_audio.data) > 16_000  # half a second of sound from before the voice was heard
    assert first_audio.anchor == ("status", 0, "idle", 1)  # "Ready" again, after set_mode
    later = [step for step in steps if isinstance(step.data, bytes)][1:]
    assert later and all(step.anchor == ("status", 0, "listening", 0) for step in later[:5])


@pytest.mark.slow
def test_a_hands_free_recording_replays_its_messages(default_settings: Settings) -> None:
    stages = Stages(asr=FakeASR(text=QUESTION), llm=FakeLLM(), tts=FakeTTS())
    recording = load_recording(find_recording(SESSION, HANDS_FREE))
    report = asyncio.run(replay_messages(recording, default_settings, stages, anchor_timeout_s=3.0))
    assert not any("never saw" in divergence for divergence in report["divergences"])
    first = report["turns"][0]
    assert first["now"]["states"][:2] == ["transcribing", "thinking"]  # heard and answered again
    assert first["matches"]["transcript"] and first["now"]["transcript"] == QUESTION
