"""Builds the providers the settings name. Loading is slow (model files) and blocking: call
:func:`load_stages` from a thread or before the event loop starts.

Providers register themselves: every module of this package that defines ``SPECS`` (a tuple of
:class:`~voicebot.providers.base.ProviderSpec`) is found here, so adding a provider means adding its
module (and its options section in settings). Each stage is a list of providers (one by default)
wrapped in a fallback that tries them in order and applies the stage's timeouts (see
:mod:`voicebot.providers.fallback`). API keys are checked before any model is loaded, so a missing
key stops start-up at once with the variable's name.
"""

from __future__ import annotations

import functools
import importlib
import os
import pkgutil
from typing import cast

from voicebot import providers as _package
from voicebot.errors import Stage
from voicebot.providers.base import ASR, LLM, TTS, Environ, Provider, ProviderSpec, Stages
from voicebot.providers.fallback import FallbackASR, FallbackLLM, FallbackTTS
from voicebot.providers.remote import api_key
from voicebot.settings import Settings


@functools.cache
def registered() -> dict[tuple[Stage, str], ProviderSpec]:
    """Every provider of every stage, by (stage, name)."""
    found: dict[tuple[Stage, str], ProviderSpec] = {}
    for info in pkgutil.iter_modules(_package.__path__):
        module = importlib.import_module(f"{_package.__name__}.{info.name}")
        for spec in getattr(module, "SPECS", ()):
            found[(spec.stage, spec.name)] = spec
    return found


def _selected(settings: Settings) -> list[ProviderSpec]:
    names = {Stage.ASR: settings.asr.providers, Stage.LLM: settings.llm.providers, Stage.TTS: settings.tts.providers}
    return [registered()[(stage, name)] for stage, stage_names in names.items() for name in stage_names]


def required_keys(settings: Settings) -> list[tuple[str, str]]:
    """(setting, environment variable) of every API key the selected providers need."""
    keys: list[tuple[str, str]] = []
    for spec in _selected(settings):
        variable = spec.key_env(settings)
        if variable:
            keys.append((f"{spec.stage.value}.{spec.name}.api_key_env", variable))
    return keys


def check_keys(settings: Settings, environ: Environ | None = None) -> None:
    """Raise :class:`~voicebot.errors.ProviderUnavailable` naming the first missing key variable."""
    environ = os.environ if environ is None else environ
    for setting, variable in required_keys(settings):
        api_key(variable, setting, environ)


def _build(stage: Stage, names: tuple[str, ...], settings: Settings, environ: Environ | None) -> list[Provider]:
    environ = os.environ if environ is None else environ
    return [registered()[(stage, name)].build(settings, environ) for name in names]


def build_asr(settings: Settings, environ: Environ | None = None) -> FallbackASR:
    providers = cast(list[ASR], _build(Stage.ASR, settings.asr.providers, settings, environ))
    return FallbackASR(providers, settings.asr.timeouts)


def build_llm(settings: Settings, environ: Environ | None = None) -> FallbackLLM:
    providers = cast(list[LLM], _build(Stage.LLM, settings.llm.providers, settings, environ))
    return FallbackLLM(providers, settings.llm.timeouts)


def build_tts(settings: Settings, environ: Environ | None = None) -> FallbackTTS:
    providers = cast(list[TTS], _build(Stage.TTS, settings.tts.providers, settings, environ))
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
