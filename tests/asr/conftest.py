"""Fixtures for the speech-recognition tests: Moonshine loaded once, and questions spoken by Piper."""

from __future__ import annotations

import asyncio

import pytest

from voicebot.bench import speak_to_input
from voicebot.providers.moonshine import MoonshineASR
from voicebot.providers.piper import PiperTTS
from voicebot.settings import MoonshineSettings, PiperSettings

QUESTIONS = ("What is the capital of France?", "How many days are there in a week?")


@pytest.fixture(scope="session")
def moonshine() -> MoonshineASR:
    """The embedded Moonshine tiny-en, loaded and warmed once."""
    asr = MoonshineASR(MoonshineSettings())
    asr.warm()
    return asr


@pytest.fixture(scope="session")
def spoken() -> dict[str, bytes]:
    """Each of QUESTIONS spoken by the embedded Piper voice, as 16 kHz microphone audio."""
    tts = PiperTTS(PiperSettings())
    return {text: asyncio.run(speak_to_input(tts, text)) for text in QUESTIONS}
