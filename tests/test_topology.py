"""The scale-out topology, tested here without containers: one model server (a real
``python -m llama_cpp.server`` with the embedded SmolLM2 GGUF) and two voicebot web processes, one
of them with two Hypercorn workers, all on loopback. Sessions are spread over both web processes,
each completes real voice turns (Piper speech in, Whisper and Piper in the web process, the reply
from the model server), and each process's ``/metrics`` counts its own turns, across its workers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from tests.conftest import QUESTION
from tests.providers.conftest import llama_server  # noqa: F401 - the model server fixture, shared
from tests.scrape import Samples, scrape, value
from voicebot.client import TurnResult, VoiceClient
from voicebot.server.localserver import free_port
from voicebot.server.ready import wait_until_ready
from voicebot.settings import load_settings


@dataclass(frozen=True)
class WebProcess:
    """One ``voicebot serve`` process on loopback."""

    port: int
    workers: int

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/voice"


def web_env(llm_base_url: str) -> dict[str, str]:
    """A web process that reaches the model server for its LLM (no key) and keeps ASR and TTS."""
    return {
        "VOICEBOT_LLM__PROVIDER": "openai",
        "VOICEBOT_LLM__OPENAI__BASE_URL": llm_base_url,
        "VOICEBOT_LLM__OPENAI__API_KEY_ENV": "",
        "VOICEBOT_LLM__OPENAI__MODEL": "smollm2",
        "VOICEBOT_RECORDING__ENABLED": "false",
        "VOICEBOT_LOGGING__LEVEL": "warning",
    }


@contextmanager
def web_process(env: dict[str, str], workers: int) -> Iterator[tuple[WebProcess, subprocess.Popen[bytes]]]:
    """Start ``voicebot serve`` (in its own process group, so its workers stop with it)."""
    port = free_port()
    command = [sys.executable, "-m", "voicebot", "serve", "--port", str(port), "--workers", str(workers)]
    process = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield WebProcess(port, workers), process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def web_tier(llama_server: str) -> Iterator[list[WebProcess]]:  # noqa: F811 - the imported fixture
    """Two web processes sharing the model server: the first with two workers, the second with one."""
    env = web_env(llama_server)
    with ExitStack() as stack:
        started = [stack.enter_context(web_process(env, workers)) for workers in (2, 1)]
        for web, process in started:  # all load at once; wait for each
            wait_until_ready(f"{web.http_url}/health", 240, process, what="voicebot serve")
        yield [web for web, _ in started]


async def settled(web: WebProcess, open_sessions: int) -> Samples:
    """The process's metrics once it holds ``open_sessions`` sessions (sessions end asynchronously)."""
    for _ in range(200):
        samples = await scrape(web.http_url)
        if value(samples, "voicebot_sessions_open") == open_sessions:
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError(f"{web.http_url} never held {open_sessions} sessions")


async def test_sessions_spread_over_two_web_processes_each_counting_its_own(
    web_tier: list[WebProcess], speech: dict[str, bytes]
) -> None:
    first, second = web_tier
    placement = [first, second, first, second, first]  # 3 sessions on the first process, 2 on the second
    clients = [await VoiceClient.connect(web.ws_url) for web in placement]
    try:
        assert value(await settled(first, 3), "voicebot_sessions_open") == 3
        assert value(await settled(second, 2), "voicebot_sessions_open") == 2
        turns: list[TurnResult] = []
        # One at a time: see README, Scaling (interrupt_requests). Each asks a question only the model
        # answers (SECOND_QUESTION, "how many days…", may be answered by the tools' intents instead).
        for client in clients:
            turns.append(await client.utterance(speech[QUESTION]))
    finally:
        for client in clients:
            await client.close()

    for index, turn in enumerate(turns):
        assert turn.errors == [], (index, turn.errors)
        assert turn.states[-1] == "idle" and turn.reply.strip() and len(turn.audio) > 0, index
    assert "france" in (turns[0].transcript or "").lower() and "paris" in turns[0].reply.lower()

    for web, count in ((first, 3), (second, 2)):
        samples = await settled(web, 0)
        assert value(samples, "voicebot_turns_total", outcome="finished") == count, web
        assert value(samples, "voicebot_first_audio_seconds_count") == count, web
        assert value(samples, "voicebot_stage_seconds_count", stage="llm_first_token") == count, web
        assert value(samples, "voicebot_errors_total", code="llm_failed") == 0
        assert value(samples, "voicebot_stage_provider", stage="llm", provider="openai", model="smollm2") == 1


def test_an_empty_key_variable_means_a_server_without_a_key() -> None:
    settings = load_settings(environ={"VOICEBOT_LLM__PROVIDER": "openai", "VOICEBOT_LLM__OPENAI__API_KEY_ENV": ""})
    assert settings.llm.openai.api_key_env is None
    assert load_settings(environ={"VOICEBOT_ASR__OPENAI__API_KEY_ENV": "null"}).asr.openai.api_key_env is None
    assert load_settings(environ={}).tts.openai.api_key_env == "OPENAI_API_KEY"
