"""Serving the application with Hypercorn, with limits set on purpose rather than left at defaults
(Hypercorn accepts 16 MiB WebSocket frames and sends no pings unless told)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import structlog
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config
from quart import Quart

from voicebot.server.app import runtime_of
from voicebot.server.security import exposure_warning
from voicebot.server.shutdown import install_signal_handlers, shutdown_trigger
from voicebot.settings import Settings


def hypercorn_config(settings: Settings) -> Config:
    config = Config()
    config.bind = [f"{settings.server.host}:{settings.server.port}"]
    config.websocket_max_message_size = settings.server.max_message_bytes
    config.websocket_ping_interval = settings.server.ping_interval_s or None
    config.graceful_timeout = settings.server.graceful_timeout_s
    config.accesslog = None
    # Hypercorn's own stderr handler would bypass structlog (and print each line twice): give it a
    # plain logger, whose lines reach the structlog-formatted root handler (see voicebot.logs).
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve(app: Quart, settings: Settings, shutdown: asyncio.Event | None = None) -> None:
    """Serve until SIGINT/SIGTERM, or until ``shutdown`` is set when given; then end the sessions
    (close 1001) and stop (voicebot.server.shutdown)."""
    config = hypercorn_config(settings)
    warning = exposure_warning(settings)
    if warning is not None:
        structlog.get_logger("voicebot.server.serving").warning("exposed_without_token", message=warning)
    loop = asyncio.get_running_loop()
    previous_handler = loop.get_exception_handler()
    loop.set_exception_handler(_quiet_cancelled_connections(previous_handler))
    stop = shutdown if shutdown is not None else asyncio.Event()
    remove_handlers = install_signal_handlers(stop) if shutdown is None else (lambda: None)
    try:
        await hypercorn_serve(app, config, shutdown_trigger=shutdown_trigger(stop, runtime_of(app), config))
    finally:
        remove_handlers()
        await asyncio.sleep(0)  # let cancelled connection callbacks run while the filter is on
        loop.set_exception_handler(previous_handler)


Handler = Callable[[asyncio.AbstractEventLoop, dict[str, Any]], object]


def _quiet_cancelled_connections(previous: Handler | None) -> Handler:
    """Python 3.11's ``asyncio.start_server`` reports a connection task cancelled at shutdown as an
    "Exception in callback" error (fixed in 3.12); that is the normal end of a served connection here.
    Everything else goes to the ``previous`` handler."""

    def handle(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if isinstance(context.get("exception"), asyncio.CancelledError):
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    return handle
