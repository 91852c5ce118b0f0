"""Fixtures for the provider tests: the wire-level fakes of the cloud services (one each per test
run, reset before each test), a real ``llama_cpp.server`` serving the embedded GGUF, and settings
built from the shipped defaults with a few keys changed."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import edge_tts.communicate
import pytest

from tests.fakeservers import FakeService, anthropic_app, edge_app, mp3_bytes, openai_app, running
from voicebot.providers.llama_cpp import resolve_model_path
from voicebot.server.localserver import free_port
from voicebot.server.ready import wait_until_ready
from voicebot.settings import EMBEDDED, Settings

#: Fake keys the tests put in the environment the providers see; never real.
KEYS = {"ANTHROPIC_API_KEY": "sk-ant-test-0123456789", "OPENAI_API_KEY": "sk-test-0123456789"}

#: Short limits so that timeouts fire quickly in tests.
FAST = {"connect_s": 1.0, "first_byte_s": 1.0, "total_s": 5.0}


async def get_json(url: str) -> Any:
    """GET ``url`` and decode its JSON, off the event loop (the in-process server runs on it)."""

    def fetch() -> Any:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    return await asyncio.to_thread(fetch)


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def make_settings(**sections: dict[str, Any]) -> Settings:
    """The defaults (the shipped settings.yaml) with ``sections`` merged in, validated."""
    return Settings.model_validate(_merge(Settings().model_dump(), sections))


@pytest.fixture(scope="session")
async def openai_server() -> AsyncIterator[FakeService]:
    service = FakeService()
    async with running(openai_app(service), service):
        yield service


@pytest.fixture(scope="session")
async def anthropic_server() -> AsyncIterator[FakeService]:
    service = FakeService()
    async with running(anthropic_app(service), service):
        yield service


@pytest.fixture(scope="session")
async def edge_server() -> AsyncIterator[FakeService]:
    """The edge-tts fake; edge-tts is pointed at it (its service URL is a module constant)."""
    service = FakeService()
    original = vars(edge_tts.communicate)["WSS_URL"]
    async with running(edge_app(service, mp3_bytes()), service):
        edge_tts.communicate.WSS_URL = f"ws://127.0.0.1:{service.port}/edge/v1?TrustedClientToken=test"  # type: ignore[attr-defined]
        try:
            yield service
        finally:
            edge_tts.communicate.WSS_URL = original  # type: ignore[attr-defined]


@pytest.fixture
def openai_fake(openai_server: FakeService) -> FakeService:
    openai_server.reset()
    return openai_server


@pytest.fixture
def anthropic_fake(anthropic_server: FakeService) -> FakeService:
    anthropic_server.reset()
    return anthropic_server


@pytest.fixture
def edge_fake(edge_server: FakeService) -> FakeService:
    edge_server.reset()
    return edge_server


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real OpenAI-compatible server (``python -m llama_cpp.server``) serving the embedded
    SmolLM2 GGUF on a loopback port; yields its ``base_url`` (ending in /v1)."""
    port = free_port()
    log = Path(tmp_path_factory.mktemp("llama-server")) / "server.log"
    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(resolve_model_path(EMBEDDED)),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--seed",
        "1234",
        "--verbose",
        "false",
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env={**os.environ})
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        wait_until_ready(f"{base_url}/models", 90, process, what="llama_cpp.server")
        yield base_url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
