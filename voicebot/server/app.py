"""The Quart application: the page, ``/health``, ``/metrics`` and the ``/ws/voice`` WebSocket.

Models are loaded once per process, before the server accepts connections (``before_serving``), and
shared by every session. Tests may pass ready-made ``stages`` (for example fakes for fault injection).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog
from quart import Quart, Response, render_template, request, websocket

from voicebot.providers.base import Stages
from voicebot.providers.checked import checked
from voicebot.providers.health import HealthMonitor
from voicebot.providers.registry import load_stages
from voicebot.server import security
from voicebot.server.memory import GiveBackAfterTurns, limit_malloc_arenas
from voicebot.server.metrics import CONTENT_TYPE, Metrics
from voicebot.session.limits import TRY_AGAIN_LATER, Close
from voicebot.session.loop import VoiceSession
from voicebot.settings import Settings
from voicebot.turn.engine import TurnEngine
from voicebot.turn.pipeline import PipelineEngine
from voicebot.turn.tools import McpLifetime, Toolbox

WEB_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Runtime:
    """What the running server holds: its settings, loaded providers and open sessions."""

    settings: Settings
    stages: Stages | None = None
    engine: TurnEngine | None = None
    toolbox: Toolbox | None = None
    sessions: dict[str, VoiceSession] = field(default_factory=dict)
    health: HealthMonitor | None = None
    metrics: Metrics = field(default_factory=Metrics)
    draining: bool = False
    """The server is shutting down: new connections are refused."""


class QuartTransport:
    """The session's transport over the current Quart websocket."""

    async def receive(self) -> str | bytes | None:
        # Quart 0.22/0.23 turn an empty binary frame into None; the session answers it with an error.
        data: Any = await websocket.receive()
        return data  # type: ignore[no-any-return]

    async def send_text(self, text: str) -> None:
        await websocket.send(text)

    async def send_bytes(self, data: bytes) -> None:
        await websocket.send(data)


def runtime_of(app: Quart) -> Runtime:
    runtime: Runtime = app.extensions["voicebot"]
    return runtime


def create_app(settings: Settings, stages: Stages | None = None) -> Quart:
    """Build the application. Without ``stages``, the providers in ``settings`` load at start-up."""
    limit_malloc_arenas()  # before the model threads allocate: see voicebot.server.memory
    app = Quart(
        __name__,
        static_folder=str(WEB_ROOT / "static"),
        template_folder=str(WEB_ROOT / "templates"),
    )
    runtime = Runtime(settings=settings, stages=stages)
    app.extensions["voicebot"] = runtime
    log = structlog.get_logger("voicebot.server.app")
    mcp = McpLifetime(settings.tools.mcp_servers)

    @app.before_serving
    async def load_models() -> None:
        if runtime.stages is None:
            log.info("loading_models")
            runtime.stages = await asyncio.to_thread(load_stages, settings)
        if settings.tools.enabled:
            runtime.toolbox = Toolbox.from_settings(settings.tools)
            if settings.tools.mcp_servers:
                await mcp.start(runtime.toolbox.registry)
        runtime.engine = PipelineEngine(
            checked(runtime.stages), settings.session, runtime.toolbox, settings.asr.partial_interval_ms
        )
        runtime.metrics.models_ready(runtime.stages.describe())
        log.info("models_ready", **{k: f"{v['provider']}:{v['model']}" for k, v in runtime.stages.describe().items()})

    @app.after_serving
    async def stop_tools() -> None:
        await mcp.stop()

    @app.after_request
    async def add_security_headers(response: Response) -> Response:
        response.headers.update(security.security_headers(request.host))
        return response

    @app.get("/")
    async def index() -> str:
        return await render_template("index.html")

    @app.get("/auth")
    async def auth() -> tuple[str, int]:
        """204 when the page may connect with the token it sends as ``Authorization: Bearer …`` (or
        none is needed), else 401: how the page learns to ask for one (a browser cannot see the
        status of a refused WebSocket handshake)."""
        header = request.headers.get("Authorization", "")
        given = [header[len("Bearer ") :]] if header.startswith("Bearer ") else []
        return ("", 204) if security.check_token(given, settings) is None else ("", 401)

    @app.get("/health")
    async def health() -> tuple[dict[str, Any], int]:
        if runtime.stages is None:
            return {"status": "starting"}, 503
        if runtime.health is None:
            runtime.health = HealthMonitor(runtime.stages)
        report = await runtime.health.report()  # cached; waits at most a moment for a refresh
        sessions = len(runtime.sessions)
        return {
            "status": report["status"],
            "sessions": sessions,
            "max_sessions": settings.limits.max_sessions,
            "stages": report["stages"],
            "providers": report["providers"],
        }, 200

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(runtime.metrics.exposition(), content_type=CONTENT_TYPE)

    @app.websocket("/ws/voice")
    async def voice() -> Response | None:
        # Refused at the handshake (an HTTP status, no session): see voicebot.server.security.
        refusal = security.check_origin(websocket.headers.get("Origin"), websocket.headers.get("Host"), settings)
        if refusal is None:
            tokens = security.presented_tokens(websocket.args, websocket.requested_subprotocols)
            refusal = security.check_token(tokens, settings)
        if refusal is None and runtime.draining:
            refusal = security.Refusal(503, "The server is shutting down.", "shutting_down")
        if refusal is not None:
            runtime.metrics.connection_refused(refusal.reason)
            log.warning(
                "connection_refused",
                reason=refusal.reason,
                status=refusal.status,
                origin=websocket.headers.get("Origin"),
                client=str(websocket.remote_addr),
            )
            return Response(refusal.body, status=refusal.status, content_type="text/plain")
        subprotocol = security.chosen_subprotocol(websocket.requested_subprotocols)
        if runtime.stages is None or runtime.engine is None:
            runtime.metrics.connection_refused("starting")
            await websocket.accept(subprotocol=subprotocol)
            await websocket.close(TRY_AGAIN_LATER, "models are still loading")
            return None
        if len(runtime.sessions) >= settings.limits.max_sessions:
            runtime.metrics.connection_refused("session_cap")
            log.warning("session_cap_reached", sessions=len(runtime.sessions), client=str(websocket.remote_addr))
            await websocket.accept(subprotocol=subprotocol)
            await _close(Close(TRY_AGAIN_LATER, "The server is busy with other conversations. Try again later."))
            return None
        # The session logs the connection (session_started / session_ended) with these, and records them.
        client = {"client": str(websocket.remote_addr), "user_agent": websocket.headers.get("User-Agent", "")}
        session = VoiceSession(
            QuartTransport(),
            runtime.engine,
            settings,
            client=client,
            providers=runtime.stages.describe(),
            toolbox=runtime.toolbox,
            observer=GiveBackAfterTurns(runtime.metrics),
        )
        runtime.sessions[session.id] = session  # before any await: the cap counts it at once
        try:
            await websocket.accept(subprotocol=subprotocol)
            await session.run()
            if session.close is not None:
                await _close(session.close)
        finally:
            runtime.sessions.pop(session.id, None)
        return None

    async def _close(close: Close) -> None:
        """Close with ``close``, then read (and drop) what the client still sends until it answers the
        close: Hypercorn stops reading a connection whose small app queue nobody empties, and would then
        never see that answer nor end the connection. A client that reads nothing gets a moment, not forever."""
        try:
            await asyncio.wait_for(websocket.close(close.code, close.reason), 1.0)
            await asyncio.wait_for(_discard_until_disconnect(), 2.0)
        except (TimeoutError, RuntimeError, OSError):
            log.info("close_not_acknowledged", code=close.code)

    async def _discard_until_disconnect() -> None:
        while True:  # Quart cancels this handler when the client's close arrives
            await websocket.receive()

    return app
