"""Builds the providers the settings name. Loading is slow (model files) and blocking: call
:func:`load_stages` from a thread or before the event loop starts.

Each stage is a list of providers (one by default) wrapped in a fallback that tries them in order
and applies the stage's timeouts (see :mod:`voicebot.providers.fallback`). API keys are checked
before any model is loaded, so a missing key stops start-up at once with the variable's name.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from voicebot.providers.base import ASR, LLM, TTS, Stages
from voicebot.providers.fallback import FallbackASR, FallbackLLM, FallbackTTS
from voicebot.providers.remote import api_key
from voicebot.settings import Settings

Environ = Mapping[str, str]


def _faster_whisper(settings: Settings, environ: Environ) -> ASR:
    from voicebot.providers.faster_whisper import FasterWhisperASR

    return FasterWhisperASR(settings.asr.faster_whisper)


def _openai_asr(settings: Settings, environ: Environ) -> ASR:
    from voicebot.providers.openai_api import OpenAIASR

    return OpenAIASR(settings.asr.openai, settings.asr.timeouts, environ)


def _llama_cpp(settings: Settings, environ: Environ) -> LLM:
    from voicebot.providers.llama_cpp import LlamaCppLLM

    return LlamaCppLLM(settings.llm)


def _anthropic(settings: Settings, environ: Environ) -> LLM:
    from voicebot.providers.anthropic_api import AnthropicLLM

    return AnthropicLLM(settings.llm, environ)


def _openai_llm(settings: Settings, environ: Environ) -> LLM:
    from voicebot.providers.openai_api import OpenAILLM

    return OpenAILLM(settings.llm, environ)


def _piper(settings: Settings, environ: Environ) -> TTS:
    from voicebot.providers.piper import PiperTTS

    return PiperTTS(settings.tts.piper)


def _edge_tts(settings: Settings, environ: Environ) -> TTS:
    from voicebot.providers.edge import EdgeTTS

    return EdgeTTS(settings.tts.edge_tts, settings.tts.timeouts)


def _openai_tts(settings: Settings, environ: Environ) -> TTS:
    from voicebot.providers.openai_api import OpenAITTS

    return OpenAITTS(settings.tts.openai, settings.tts.timeouts, environ)


ASR_BUILDERS: dict[str, Callable[[Settings, Environ], ASR]] = {
    "faster_whisper": _faster_whisper,
    "openai": _openai_asr,
}
LLM_BUILDERS: dict[str, Callable[[Settings, Environ], LLM]] = {
    "llama_cpp": _llama_cpp,
    "anthropic": _anthropic,
    "openai": _openai_llm,
}
TTS_BUILDERS: dict[str, Callable[[Settings, Environ], TTS]] = {
    "piper": _piper,
    "edge_tts": _edge_tts,
    "openai": _openai_tts,
}


def required_keys(settings: Settings) -> list[tuple[str, str]]:
    """(setting, environment variable) of every API key the selected providers need."""
    keys: list[tuple[str, str]] = []
    if "openai" in settings.asr.providers and settings.asr.openai.api_key_env:
        keys.append(("asr.openai.api_key_env", settings.asr.openai.api_key_env))
    if "anthropic" in settings.llm.providers:
        keys.append(("llm.anthropic.api_key_env", settings.llm.anthropic.api_key_env))
    if "openai" in settings.llm.providers and settings.llm.openai.api_key_env:
        keys.append(("llm.openai.api_key_env", settings.llm.openai.api_key_env))
    if "openai" in settings.tts.providers and settings.tts.openai.api_key_env:
        keys.append(("tts.openai.api_key_env", settings.tts.openai.api_key_env))
    return keys


def check_keys(settings: Settings, environ: Environ | None = None) -> None:
    """Raise :class:`~voicebot.errors.ProviderUnavailable` naming the first missing key variable."""
    environ = os.environ if environ is None else environ
    for setting, variable in required_keys(settings):
        api_key(variable, setting, environ)


def build_asr(settings: Settings, environ: Environ | None = None) -> FallbackASR:
    environ = os.environ if environ is None else environ
    providers = [ASR_BUILDERS[name](settings, environ) for name in settings.asr.providers]
    return FallbackASR(providers, settings.asr.timeouts)


def build_llm(settings: Settings, environ: Environ | None = None) -> FallbackLLM:
    environ = os.environ if environ is None else environ
    providers = [LLM_BUILDERS[name](settings, environ) for name in settings.llm.providers]
    return FallbackLLM(providers, settings.llm.timeouts)


def build_tts(settings: Settings, environ: Environ | None = None) -> FallbackTTS:
    environ = os.environ if environ is None else environ
    providers = [TTS_BUILDERS[name](settings, environ) for name in settings.tts.providers]
    return FallbackTTS(providers, settings.tts.timeouts)


def load_stages(settings: Settings, warm: bool = True, environ: Environ | None = None) -> Stages:
    """Load every stage's providers and (by default) warm them with a tiny request."""
    check_keys(settings, environ)
    stages = Stages(
        asr=build_asr(settings, environ),
        llm=build_llm(settings, environ),
        tts=build_tts(settings, environ),
    )
    if warm:
        for provider in (stages.asr, stages.llm, stages.tts):
            provider.warm()
    return stages
