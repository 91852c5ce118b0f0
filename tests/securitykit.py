"""Helpers for the security tests: a real server with fake stages and chosen security/limit settings,
and a raw WebSocket client that reports how the server closed it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.fakes import FakeASR, FakeLLM, FakeTTS
from voicebot.providers.base import Stages
from voicebot.server.localserver import LocalServer, local_server
from voicebot.settings import Settings, load_settings

TOKEN = "s3cret-token-for-tests-0123456789"
SPEECH = b"\x00\x10" * 16_000  # 1 s, loud enough for the silence gate


def fake_stages(**kwargs: Any) -> Stages:
    return Stages(
        asr=kwargs.get("asr") or FakeASR(),
        llm=kwargs.get("llm") or FakeLLM(),
        tts=kwargs.get("tts") or FakeTTS(ms_per_char=2.0),
    )


def settings_with(**sections: dict[str, Any]) -> Settings:
    """The shipped settings (recording off) with ``sections`` updated, e.g. ``limits={"max_sessions": 1}``."""
    base = load_settings(environ={"VOICEBOT_RECORDING__ENABLED": "false"})
    data = base.model_dump()
    for name, values in sections.items():
        data[name] = {**data[name], **values}
    if "security" in sections and sections["security"].get("token"):
        data["security"]["token"] = sections["security"]["token"]
    else:
        data["security"]["token"] = base.security.token and base.security.token.get_secret_value()
    return Settings.model_validate(data)


@asynccontextmanager
async def server_with(stages: Stages | None = None, **sections: dict[str, Any]) -> AsyncIterator[LocalServer]:
    async with local_server(settings_with(**sections), stages or fake_stages()) as server:
        yield server


async def closed_with(connection: ClientConnection, timeout_s: float = 10.0) -> tuple[int | None, str]:
    """Read (and drop) everything until the server closes; its close code and reason."""
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                await connection.recv()
    except ConnectionClosed as closed:
        frame = closed.rcvd
        return (frame.code, frame.reason) if frame is not None else (None, "")


async def open_session(server: LocalServer, **kwargs: Any) -> ClientConnection:
    """A raw connection whose first status (the session started) has been read."""
    connection = await connect(server.ws_url, max_size=None, **kwargs)
    await connection.recv()
    return connection


async def wait_until(condition: Any, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - polling state the server changes
            await asyncio.sleep(0.01)
