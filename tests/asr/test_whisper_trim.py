"""faster-whisper tiny.en over a window trimmed to the utterance."""

from __future__ import annotations

import pytest

from voicebot.bench.wer import normalize
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
    asr = TrimmedWhisperASR(TrimmedWhisperSettings())
    asr.warm()
    for question in QUESTIONS:
        assert normalize(await asr.transcribe(spoken[question], 16_000)) == normalize(question)
