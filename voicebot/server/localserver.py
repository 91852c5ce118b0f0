"""Serving an app inside the current event loop on a free loopback port, for tests, ``voicebot
replay`` and anything else that needs a real server over real sockets without a second process."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from quart import Quart

from voicebot.providers.base import Stages
from voicebot.server.app import Runtime, create_app, runtime_of
from voicebot.server.ready import wait_until_ready
from voicebot.server.serving import serve
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
        ready = asyncio.create_task(asyncio.to_thread(wait_until_ready, f"http://127.0.0.1:{port}/health", 600))
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()  # start-up failed: raise its error
            raise RuntimeError("the server stopped before it was ready")
        ready.result()
        yield LocalServer(app, port)
    finally:
        shutdown.set()
        await task
