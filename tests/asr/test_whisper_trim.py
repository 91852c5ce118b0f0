"""faster-whisper tiny.en over a window trimmed to the utterance."""

from __future__ import annotations

import pytest

from voicebot.bench.wer import word_errors
from voicebot.providers.whisper_trim import TrimmedWhisperASR, window_frames
from voicebot.settings import TrimmedWhisperSettings

from .conftest import QUESTIONS


def test_window_is_the_utterance_plus_margin_within_limits() -> None:
    settings = TrimmedWhisperSettings(min_window_s=5, margin_s=2)
    assert window_frames(250, settings) == 500  # 2.5 s of audio: the 5 s minimum
    assert window_frames(401, settings) == 602  # 4 s + 2 s margin, rounded up to even
    assert window_frames(2900, settings) == 3000  # never beyond Whisper's 30 s


@pytest.mark.models
async def test_transcribes_a_spoken_question(spoken: dict[str, bytes]) -> None:
    """The trimmed window hears each question, give or take one word: Piper's voice differs from one
    synthesis to the next, and tiny.en mishears a word of it now and then (measured: "capital of
    France" heard as "capital of friends" in 2 of 60 syntheses, with the window trimmed; Moonshine heard
    all 60). A window cut too short would lose the question's end, several words."""
    asr = TrimmedWhisperASR(TrimmedWhisperSettings())
    asr.warm()
    for question in QUESTIONS:
        heard = await asr.transcribe(spoken[question], 16_000)
        assert word_errors([(question, heard)]).errors <= 1, heard  # both normalised by word_errors
