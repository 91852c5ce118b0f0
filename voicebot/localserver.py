"""Serving an app inside the current event loop on a free loopback port, for tests, ``voicebot
replay`` and anything else that needs a real server over real sockets without a second process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from quart import Quart

from voicebot.app import Runtime, create_app, runtime_of
from voicebot.providers.base import Stages
from voicebot.server import serve
from voicebot.settings import Settings


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class LocalServer:
    app: Quart
    port: int

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/voice"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def runtime(self) -> Runtime:
        return runtime_of(self.app)


@asynccontextmanager
async def local_server(
    settings: Settings, stages: Stages | None = None, graceful_timeout_s: float = 0.2
) -> AsyncIterator[LocalServer]:
    """Serve ``create_app(settings, stages)`` on a free loopback port until the block ends.

    The graceful timeout is short by default: Hypercorn's ping task of a WebSocket that has already
    closed sleeps on until the graceful timeout ends, so every stop would otherwise wait for it.
    """
    port = free_port()
    server = settings.server.model_copy(
        update={"host": "127.0.0.1", "port": port, "graceful_timeout_s": graceful_timeout_s}
    )
    settings = settings.model_copy(update={"server": server})
    app = create_app(settings, stages)
    shutdown = asyncio.Event()
    task = asyncio.create_task(serve(app, settings, shutdown))
    try:
        while runtime_of(app).stages is None or not await _accepts(port):
            if task.done():
                task.result()  # start-up failed: raise its error
            await asyncio.sleep(0.02)
        yield LocalServer(app, port)
    finally:
        shutdown.set()
        await task


async def _accepts(port: int) -> bool:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.write(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    return True
