"""Pauses while the push-to-talk button is held, on real speech (the Piper voice) and the real
Silero model: a pause after speech is reported once, speech after it resumes, and silence or a short
click before anyone spoke reports nothing."""

from __future__ import annotations

import numpy as np

from tests.vad.conftest import FIRST_HALF, QUESTION, SECOND_HALF
from tests.vad.signals import Samples, to_pcm, zeros
from voicebot.handsfree.listener import SpeechPaused, SpeechResumed
from voicebot.handsfree.pauses import PauseDetector
from voicebot.handsfree.vad import SileroModel


def feed(detector: PauseDetector, samples: Samples, frame: int = 320) -> list[SpeechPaused | SpeechResumed]:
    events: list[SpeechPaused | SpeechResumed] = []
    for start in range(0, len(samples), frame):
        events += detector.feed(to_pcm(samples[start : start + frame]))
    return events


def test_a_pause_after_the_question_is_reported_once(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    detector = PauseDetector(200, model=silero)
    events = feed(detector, np.concatenate([zeros(0.3), spoken[QUESTION], zeros(1.0)]))
    assert len(events) == 1 and isinstance(events[0], SpeechPaused)
    end_of_speech_ms = (0.3 + len(spoken[QUESTION]) / 16_000) * 1000
    assert abs(events[0].at_ms - end_of_speech_ms) < 250  # the silence began about when the words ended


def test_speaking_again_after_a_pause_resumes(silero: SileroModel, spoken: dict[str, Samples]) -> None:
    detector = PauseDetector(200, model=silero)
    audio = np.concatenate([spoken[FIRST_HALF], zeros(0.5), spoken[SECOND_HALF], zeros(0.5)])
    kinds = [type(event) for event in feed(detector, audio)]
    assert kinds == [SpeechPaused, SpeechResumed, SpeechPaused]


def test_no_pause_without_speech_before_it(silero: SileroModel) -> None:
    detector = PauseDetector(200, model=silero)
    click = np.zeros(1600, dtype=np.float32)
    click[:40] = 0.8  # a 2.5 ms click: not speech
    noise = np.random.default_rng(3).normal(0, 0.002, 32_000).astype(np.float32)
    assert feed(detector, np.concatenate([zeros(0.5), click, noise])) == []
