"""Builds the providers the settings name. Loading is slow (model files) and blocking: call
:func:`load_stages` from a thread or before the event loop starts."""

from __future__ import annotations

from voicebot.providers.base import ASR, LLM, TTS, Stages
from voicebot.settings import Settings


def build_asr(settings: Settings) -> ASR:
    if settings.asr.provider == "faster_whisper":
        from voicebot.providers.faster_whisper import FasterWhisperASR

        return FasterWhisperASR(settings.asr.faster_whisper)
    raise AssertionError(f"unhandled asr provider {settings.asr.provider}")


def build_llm(settings: Settings) -> LLM:
    if settings.llm.provider == "llama_cpp":
        from voicebot.providers.llama_cpp import LlamaCppLLM

        return LlamaCppLLM(settings.llm)
    raise AssertionError(f"unhandled llm provider {settings.llm.provider}")


def build_tts(settings: Settings) -> TTS:
    if settings.tts.provider == "piper":
        from voicebot.providers.piper import PiperTTS

        return PiperTTS(settings.tts.piper)
    raise AssertionError(f"unhandled tts provider {settings.tts.provider}")


def load_stages(settings: Settings, warm: bool = True) -> Stages:
    """Load every stage's provider and (by default) warm it with a tiny request."""
    stages = Stages(asr=build_asr(settings), llm=build_llm(settings), tts=build_tts(settings))
    if warm:
        for provider in (stages.asr, stages.llm, stages.tts):
            provider.warm()
    return stages
