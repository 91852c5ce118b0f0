"""Shared fixtures: the real embedded models (loaded once), speech made with Piper, and a real server
over real sockets in this process (so tests can also look at the sessions it holds)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterator, MutableMapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog

from voicebot.bench import speak_to_input
from voicebot.client import TurnResult, VoiceClient
from voicebot.providers.base import Stages
from voicebot.providers.registry import load_stages
from voicebot.server.localserver import LocalServer, local_server
from voicebot.settings import Settings, load_settings

QUESTION = "What is the capital of France?"
#: A question the intent layer does not know: the model answers it (tests of the LLM path use it).
SECOND_QUESTION = "What is the tallest mountain in the world?"


@pytest.fixture(scope="session")
def default_settings() -> Settings:
    """The shipped settings.yaml, without the developer's VOICEBOT_* environment, and with session
    recording off (tests that record turn it on with a temporary directory)."""
    return load_settings(environ={"VOICEBOT_RECORDING__ENABLED": "false"})


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
    """``async with serve(stages, intents=True, **session_overrides) as server``: a real server on a free
    port."""

    def factory(stages: Stages, intents: bool = True, **session: object) -> AbstractAsyncContextManager[LocalServer]:
        """``intents=False``: every question goes to the model (the intent layer would answer some)."""
        settings = default_settings.model_copy(
            update={
                "session": default_settings.session.model_copy(update=session),
                "tools": default_settings.tools.model_copy(update={"intents": intents}),
            }
        )
        return local_server(settings, stages)

    return factory


@pytest.fixture
async def embedded_server(serve: ServerFactory, embedded_stages: Stages) -> AsyncIterator[LocalServer]:
    async with serve(embedded_stages) as server:
        yield server


def recording_settings(settings: Settings, directory: Path) -> Settings:
    """``settings`` with recording on into ``directory``."""
    return settings.model_copy(
        update={"recording": settings.recording.model_copy(update={"enabled": True, "directory": str(directory)})}
    )


async def sessions_ended(server: LocalServer, timeout_s: float = 10.0) -> None:
    """Wait until the server holds no session: each finishes its recording as it ends."""
    for _ in range(int(timeout_s * 100)):
        if not server.runtime.sessions:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"sessions still open after {timeout_s} s: {list(server.runtime.sessions)}")


def only_folder(directory: Path) -> Path:
    """The single recording folder in ``directory``."""
    (folder,) = directory.iterdir()
    return folder


@dataclass
class RecordedSession:
    """A real session recorded over the WebSocket with the embedded models (see ``recorded_session``)."""

    settings: Settings
    """The settings it ran with: recording on, into a temporary directory."""
    session_id: str
    folder: Path
    logs: list[MutableMapping[str, Any]]
    """Every structlog line of the run, as ``structlog.testing.capture_logs`` saw it."""
    turns: list[TurnResult]
    """What the client saw of turn 1 (interrupted while thinking) and turn 2 (answered)."""


@pytest.fixture(scope="session")
async def recorded_session(
    tmp_path_factory: pytest.TempPathFactory,
    default_settings: Settings,
    embedded_stages: Stages,
    speech: dict[str, bytes],
) -> RecordedSession:
    """One session, recorded: turn 1 asks QUESTION and is interrupted (barge-in) as soon as its
    transcript arrives; turn 2 asks SECOND_QUESTION and is answered in full."""
    settings = recording_settings(default_settings, Path(tmp_path_factory.mktemp("recordings")))
    with structlog.testing.capture_logs() as logs:
        async with local_server(settings, embedded_stages) as server:
            client = await VoiceClient.connect(server.ws_url, user_agent_header="pytest-client/1.0")
            await client.send_action("start_listening")
            await client.send_audio(speech[QUESTION])
            await client.send_action("stop_listening")
            first = TurnResult()
            for frame in await client.wait_for(lambda f: isinstance(f, dict) and f.get("type") == "transcript"):
                if isinstance(frame, dict):
                    first.events.append(frame)
            first.transcript = first.events[-1]["text"]
            await client.send_action("start_listening", played_ms=0)  # barge-in while it is thinking
            for frame in await client.wait_for(lambda f: isinstance(f, dict) and f.get("state") == "listening"):
                if isinstance(frame, dict):
                    first.events.append(frame)
            await client.send_audio(speech[SECOND_QUESTION])
            await client.send_action("stop_listening")
            second = await client.collect_turn()
            await client.close()
            await sessions_ended(server)
    assert client.session_id is not None
    folder = only_folder(Path(settings.recording.directory))
    return RecordedSession(settings, client.session_id, folder, logs, [first, second])


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Logging set-up (``configure_logging``, the replay command) changes process-wide state: put
    structlog and the root logger back after the test."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


#: Fixtures that load or use the real embedded models: a test using any of them is a ``models`` test.
MODEL_FIXTURES = frozenset({"embedded_stages", "speech", "embedded_server", "recorded_session", "llama_server"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the embedded models, however it reaches them, so that
    ``pytest -m "not models and not browser"`` (the fast tier) never loads one."""
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.models)
