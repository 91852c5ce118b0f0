"""Fixtures of the hands-free tests: the shared Silero model, and scripted audio made with the
embedded Piper voice (the assistant, and one user), espeak-ng (another user) and sox (room noise).
Only the models these tests need are loaded (no LLM)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.vad.signals import RATE, Samples, from_pcm
from voicebot.audio import read_wav, resample
from voicebot.bench import speak_to_input
from voicebot.providers.faster_whisper import FasterWhisperASR
from voicebot.providers.piper import PiperTTS
from voicebot.settings import Settings
from voicebot.vad import SileroModel, shared_model

QUESTION = "What is the capital of France?"
SECOND_QUESTION = "How many days are there in a week?"
FIRST_HALF = "I would like to know"
SECOND_HALF = "the weather in Paris tomorrow morning."
REPLY = (
    "The capital of France is Paris. It is known for the Eiffel Tower, its museums and its cafes, "
    "and about two million people live there."
)
USER_INTERRUPTION = "Wait a moment, tell me about Berlin instead."


@pytest.fixture(scope="session")
def silero() -> SileroModel:
    """The process's shared Silero model."""
    return shared_model()


@pytest.fixture(scope="session")
def piper(default_settings: Settings) -> PiperTTS:
    """The embedded Piper voice alone."""
    return PiperTTS(default_settings.tts.piper)


@pytest.fixture(scope="session")
def whisper(default_settings: Settings) -> FasterWhisperASR:
    """The embedded faster-whisper tiny.en, to check what an utterance's audio says."""
    return FasterWhisperASR(default_settings.asr.faster_whisper)


@pytest.fixture(scope="session")
def spoken(piper: PiperTTS) -> dict[str, Samples]:
    """Phrases spoken by the Piper voice as 16 kHz float samples, without padding."""
    texts = (QUESTION, SECOND_QUESTION, FIRST_HALF, SECOND_HALF, REPLY)
    return {text: from_pcm(asyncio.run(speak_to_input(piper, text, silence_ms=0))) for text in texts}


def espeak(text: str, directory: Path, voice: str = "en-us+f3") -> Samples:
    """``text`` spoken by espeak-ng (a different voice from the assistant's) at 16 kHz."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install -y espeak-ng)")
    path = directory / "espeak.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True, capture_output=True)
    pcm, rate = read_wav(path)
    return from_pcm(resample(pcm, rate, RATE))


@pytest.fixture(scope="session")
def user_voice(tmp_path_factory: pytest.TempPathFactory) -> Samples:
    """The user interrupting, spoken by espeak-ng at a conversational level (RMS about 0.05)."""
    samples = espeak(USER_INTERRUPTION, tmp_path_factory.mktemp("espeak"))
    active = samples[np.abs(samples) > 0.01]
    return (samples * (0.05 / float(np.sqrt(np.mean(np.square(active)))))).astype(np.float32)


def sox_noise(kind: str, seconds: float, volume: float, directory: Path) -> Samples:
    """Room noise made by sox (``pinknoise``, ``brownnoise``, ``whitenoise``) at ``volume``, the
    same every run (``sox -R``)."""
    if shutil.which("sox") is None:
        pytest.skip("sox is not installed (apt-get install -y sox)")
    path = directory / f"{kind}-{seconds}-{volume}.wav"
    command = ["sox", "-R", "-n", "-r", str(RATE), "-b", "16", "-c", "1", str(path), "synth", str(seconds), kind]
    subprocess.run([*command, "vol", str(volume)], check=True, capture_output=True)
    pcm, rate = read_wav(path)
    assert rate == RATE
    return from_pcm(pcm)


@pytest.fixture(scope="session")
def noise_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("noise")
