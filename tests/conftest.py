"""Shared fixtures: the real embedded models (loaded once), speech made with Piper, and a real server
over real sockets in this process (so tests can also look at the sessions it holds)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from voicebot.bench import speak_to_input
from voicebot.localserver import LocalServer, local_server
from voicebot.providers.base import Stages
from voicebot.providers.registry import load_stages
from voicebot.settings import Settings, load_settings

QUESTION = "What is the capital of France?"
SECOND_QUESTION = "How many days are there in a week?"


@pytest.fixture(scope="session")
def default_settings() -> Settings:
    """The shipped settings.yaml, without the developer's VOICEBOT_* environment."""
    return load_settings(environ={})


@pytest.fixture(scope="session")
def embedded_stages(default_settings: Settings) -> Stages:
    """The real embedded ASR, LLM and TTS, loaded and warmed once for the whole test run."""
    return load_stages(default_settings)


@pytest.fixture(scope="session")
def speech(embedded_stages: Stages) -> dict[str, bytes]:
    """Questions spoken by the embedded Piper voice, as 16 kHz microphone audio."""
    return {text: asyncio.run(speak_to_input(embedded_stages.tts, text)) for text in (QUESTION, SECOND_QUESTION)}


ServerFactory = Callable[..., AbstractAsyncContextManager[LocalServer]]


@pytest.fixture
def serve(default_settings: Settings) -> ServerFactory:
    """``async with serve(stages, **session_overrides) as server``: a real server on a free port."""

    def factory(stages: Stages, **session: object) -> AbstractAsyncContextManager[LocalServer]:
        settings = default_settings.model_copy(update={"session": default_settings.session.model_copy(update=session)})
        return local_server(settings, stages)

    return factory


@pytest.fixture
async def embedded_server(serve: ServerFactory, embedded_stages: Stages) -> AsyncIterator[LocalServer]:
    async with serve(embedded_stages) as server:
        yield server
