"""Stopping the server without losing anything: on SIGTERM (or SIGINT) new connections are refused,
every session's reply is cut and its recording flushed, each page is told with close 1001 (going
away), and the process exits as soon as that is done: within about a second when sessions are idle,
never later than ``server.graceful_timeout_s``.

Hypercorn on its own waits the whole graceful timeout: a closed WebSocket's ping task sleeps on until
its next ping, and a session in the middle of a reply is cancelled at the deadline (the page sees 1011).
So the shutdown trigger handed to Hypercorn first ends the sessions itself, then shortens Hypercorn's
remaining wait to what is left for connections that are already closing.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable

import structlog
from hypercorn.config import Config

from voicebot.server.app import Runtime
from voicebot.session.limits import SERVER_SHUTDOWN

#: What Hypercorn is left to wait for connections already closing (pings asleep, keep-alive HTTP).
LINGER_S = 0.2

_log = structlog.get_logger("voicebot.server.shutdown")


def install_signal_handlers(stop: asyncio.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGTERM and SIGINT; return a function that removes the handlers again."""
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError):  # not the main thread, or not supported here
            pass

    def remove() -> None:
        for signum in installed:
            loop.remove_signal_handler(signum)

    return remove


async def drain_sessions(runtime: Runtime, timeout_s: float) -> float:
    """Refuse new sessions, end every open one with close 1001 and wait (at most ``timeout_s``) until
    all have finished. Return the seconds it took."""
    started = time.monotonic()
    runtime.draining = True
    sessions = list(runtime.sessions.values())
    _log.info("shutting_down", sessions=len(sessions))
    for session in sessions:
        session.end(SERVER_SHUTDOWN, "server_shutdown")
    deadline = started + timeout_s
    while runtime.sessions and time.monotonic() < deadline:  # noqa: ASYNC110 - the routes empty it as sessions end
        await asyncio.sleep(0.01)
    if runtime.sessions:
        _log.warning("sessions_still_open", sessions=len(runtime.sessions))
    return time.monotonic() - started


def shutdown_trigger(stop: asyncio.Event, runtime: Runtime, config: Config) -> Callable[[], Awaitable[None]]:
    """The trigger for Hypercorn's ``serve``: returns once ``stop`` is set and the sessions are ended."""
    graceful_s = config.graceful_timeout

    async def trigger() -> None:
        await stop.wait()
        spent = await drain_sessions(runtime, graceful_s)
        # Hypercorn reads this after the trigger returns: what is left is for closing connections only.
        config.graceful_timeout = max(0.0, min(LINGER_S, graceful_s - spent))

    return trigger
