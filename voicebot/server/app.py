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
from quart import Quart, Response, render_template, websocket

from voicebot.providers.base import Stages
from voicebot.providers.health import HealthMonitor
from voicebot.providers.registry import load_stages
from voicebot.server.metrics import CONTENT_TYPE, Metrics
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
            runtime.stages, settings.session, runtime.toolbox, settings.asr.partial_interval_ms
        )
        runtime.metrics.models_ready(runtime.stages.describe())
        log.info("models_ready", **{k: f"{v['provider']}:{v['model']}" for k, v in runtime.stages.describe().items()})

    @app.after_serving
    async def stop_tools() -> None:
        await mcp.stop()

    @app.get("/")
    async def index() -> str:
        return await render_template("index.html")

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
            "stages": report["stages"],
            "providers": report["providers"],
        }, 200

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(runtime.metrics.exposition(), content_type=CONTENT_TYPE)

    @app.websocket("/ws/voice")
    async def voice() -> None:
        if runtime.stages is None or runtime.engine is None:
            runtime.metrics.connection_refused("starting")
            await websocket.close(1013, "models are still loading")
            return
        # The session logs the connection (session_started / session_ended) with these, and records them.
        client = {"client": str(websocket.remote_addr), "user_agent": websocket.headers.get("User-Agent", "")}
        session = VoiceSession(
            QuartTransport(),
            runtime.engine,
            settings,
            client=client,
            providers=runtime.stages.describe(),
            toolbox=runtime.toolbox,
            observer=runtime.metrics,
        )
        runtime.sessions[session.id] = session
        try:
            await session.run()
        finally:
            runtime.sessions.pop(session.id, None)

    return app
