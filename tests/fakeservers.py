"""Local stand-ins for the cloud services, at the wire level, on 127.0.0.1.

Each fake speaks what the real service sends (so the real client libraries run unchanged against
it): OpenAI's chat-completion SSE chunks ending in ``data: [DONE]``, its transcription and raw-PCM
speech endpoints; Anthropic's Messages SSE events (``message_start`` … ``message_stop``, ``ping``,
mid-stream ``error``); and the edge-tts WebSocket protocol (``turn.start``, binary ``Path:audio``
messages with a 2-byte header length and MP3, ``audio.metadata``, ``turn.end``). Error bodies follow
each service's documented shapes.

A fake's ``mode`` chooses its behaviour for the next requests:

- ``ok``: answer normally;
- ``401``, ``429``, ``500``, ``529``: answer with that status and the service's error body;
- ``hang``: accept the request and never answer (the client's timeouts must fire);
- ``cut``: start answering, then drop the connection in the middle;
- ``stall``: start answering, then send nothing more;
- ``truncated``: start answering, then end the body cleanly without the end-of-reply marker;
- ``error_event``: (Anthropic) a mid-stream ``error`` event after the first text.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import av
import numpy as np
from aiohttp import WSMsgType, web

REPLY = ("The capital", " of France", " is Paris.", " It is lovely.")
HANG_S = 30.0


def _headers(request: web.Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    """One fake service: its aiohttp app, the mode, and every request it saw."""

    mode: str = "ok"
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    reply: tuple[str, ...] = REPLY
    hung_up: int = 0
    """Requests whose client went away while this fake was holding them (``hang``, ``stall``)."""

    def reset(self, mode: str = "ok") -> None:
        self.mode = mode
        self.requests.clear()
        self.hung_up = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


@web.middleware
async def _quiet(request: web.Request, handler: Any) -> web.StreamResponse:
    """A client that gave up (its timeout fired) is what the tests want; not an error to log."""
    try:
        response: web.StreamResponse = await handler(request)
    except ConnectionResetError:
        return web.Response(status=499)
    return response


SERVICE = web.AppKey("service", FakeService)


def _app(service: FakeService) -> web.Application:
    app = web.Application(middlewares=[_quiet])
    app[SERVICE] = service
    return app


@asynccontextmanager
async def running(app: web.Application, service: FakeService) -> AsyncIterator[FakeService]:
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    service.port = server.sockets[0].getsockname()[1]
    try:
        yield service
    finally:
        await runner.cleanup()


async def _hang(request: web.Request) -> None:
    """Send nothing until the client gives up (or HANG_S passes)."""
    deadline = asyncio.get_running_loop().time() + HANG_S
    while asyncio.get_running_loop().time() < deadline:
        transport = request.transport
        if transport is None or transport.is_closing():
            request.app[SERVICE].hung_up += 1
            raise ConnectionResetError("the client went away")
        await asyncio.sleep(0.05)


def _cut(request: web.Request) -> None:
    """Drop the connection without finishing the HTTP body."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _break_mid_stream(service: FakeService, request: web.Request, response: web.StreamResponse) -> bool:
    """After the first piece of a stream, break it as ``service.mode`` says: ``cut`` drops the
    connection, ``stall`` sends nothing more until the client gives up, ``truncated`` ends the body
    early. True when the handler must return ``response`` now."""
    if service.mode == "cut":
        _cut(request)
        return True
    if service.mode == "stall":
        await _hang(request)
    if service.mode == "truncated":
        await response.write_eof()
        return True
    return False


# --- OpenAI ---------------------------------------------------------------------------------------

_OPENAI_ERRORS = {
    401: ("Incorrect API key provided: sk-te***ey. You can find your API key at the dashboard.", "invalid_api_key"),
    429: ("You exceeded your current quota, please check your plan and billing details.", "insufficient_quota"),
    500: ("The server had an error while processing your request. Sorry about that!", "server_error"),
    529: ("The engine is currently overloaded, please try again later.", "overloaded"),
}


def _openai_error(status: int) -> web.Response:
    message, code = _OPENAI_ERRORS[status]
    kind = "server_error" if status >= 500 else "invalid_request_error" if status == 401 else "insufficient_quota"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    data = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": "fake-model",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return f"data: {json.dumps(data)}\n\n".encode()


def sine_pcm(seconds: float, rate: int, freq: float = 440.0, level: float = 0.3) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    pcm: bytes = (level * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2").tobytes()
    return pcm


async def _status_or_hang(service: FakeService, request: web.Request) -> web.Response | None:
    if service.mode.isdigit():
        return _openai_error(int(service.mode))
    if service.mode == "hang":
        await _hang(request)
    return None


def openai_app(service: FakeService) -> web.Application:
    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        service.requests.append(Recorded("/v1/chat/completions", _headers(request), body))
        if (early := await _status_or_hang(service, request)) is not None:
            return early
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(_chunk({"role": "assistant", "content": ""}))
        for index, piece in enumerate(service.reply):
            await response.write(_chunk({"content": piece}))
            await asyncio.sleep(0.01)
            if index == 0 and await _break_mid_stream(service, request, response):
                return response
        await response.write(_chunk({}, finish="stop"))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def transcriptions(request: web.Request) -> web.Response:
        form = await request.post()
        upload: Any = form["file"]
        body = {
            key: (value if isinstance(value, str) else {"filename": value.filename, "data": value.file.read()})
            for key, value in form.items()
        }
        del upload
        service.requests.append(Recorded("/v1/audio/transcriptions", _headers(request), body))
        if (early := await _status_or_hang(service, request)) is not None:
            return early
        return web.json_response({"text": " ".join(service.reply).replace("  ", " ").strip()})

    async def speech(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        service.requests.append(Recorded("/v1/audio/speech", _headers(request), body))
        if (early := await _status_or_hang(service, request)) is not None:
            return early
        pcm = sine_pcm(0.5, 24_000)
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        await response.prepare(request)
        # Odd-sized pieces: a chunk may end in the middle of a sample.
        for index, start in enumerate(range(0, len(pcm), 4801)):
            await response.write(pcm[start : start + 4801])
            await asyncio.sleep(0.005)
            if index == 0 and await _break_mid_stream(service, request, response):
                return response
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        service.requests.append(Recorded("/v1/models", _headers(request), None))
        if (early := await _status_or_hang(service, request)) is not None:
            return early
        return web.json_response(
            {"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0, "owned_by": "fake"}]}
        )

    app = _app(service)
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_post("/v1/audio/speech", speech)
    app.router.add_get("/v1/models", models)
    return app


# --- Anthropic ------------------------------------------------------------------------------------

_ANTHROPIC_ERRORS = {
    401: ("authentication_error", "invalid x-api-key"),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def anthropic_app(service: FakeService) -> web.Application:
    async def messages(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        service.requests.append(Recorded("/v1/messages", _headers(request), body))
        if service.mode.isdigit():
            kind, message = _ANTHROPIC_ERRORS[int(service.mode)]
            return web.json_response(
                {"type": "error", "error": {"type": kind, "message": message}}, status=int(service.mode)
            )
        if service.mode == "hang":
            await _hang(request)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        model = body.get("model", "claude")
        await response.write(
            _event(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        "id": "msg_fake",
                        "type": "message",
                        "role": "assistant",
                        "content": [],
                        "model": model,
                        "stop_reason": None,
                        "stop_sequence": None,
                        "usage": {"input_tokens": 25, "output_tokens": 1},
                    },
                },
            )
        )
        await response.write(
            _event(
                "content_block_start",
                {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
            )
        )
        await response.write(_event("ping", {"type": "ping"}))
        for index, piece in enumerate(service.reply):
            await response.write(
                _event(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
            )
            await asyncio.sleep(0.01)
            if index == 0 and service.mode == "error_event":
                await response.write(
                    _event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
                )
                await response.write_eof()
                return response
            if index == 0 and await _break_mid_stream(service, request, response):
                return response
        await response.write(_event("content_block_stop", {"type": "content_block_stop", "index": 0}))
        await response.write(
            _event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 12},
                },
            )
        )
        await response.write(_event("message_stop", {"type": "message_stop"}))
        await response.write_eof()
        return response

    async def models(request: web.Request) -> web.Response:
        service.requests.append(Recorded("/v1/models", _headers(request), dict(request.query)))
        if service.mode.isdigit():
            kind, message = _ANTHROPIC_ERRORS[int(service.mode)]
            return web.json_response(
                {"type": "error", "error": {"type": kind, "message": message}}, status=int(service.mode)
            )
        model = {
            "type": "model",
            "id": "claude-haiku-4-5",
            "display_name": "Claude Haiku 4.5",
            "created_at": "2025-10-01T00:00:00Z",
        }
        return web.json_response({"data": [model], "has_more": False, "first_id": model["id"], "last_id": model["id"]})

    app = _app(service)
    app.router.add_post("/v1/messages", messages)
    app.router.add_get("/v1/models", models)
    return app


# --- edge-tts -------------------------------------------------------------------------------------


def mp3_bytes(seconds: float = 0.6, rate: int = 24_000) -> bytes:
    """A tone encoded like the service's audio-24khz-48kbitrate-mono-mp3 (raw MPEG frames, no tags)."""
    buffer = io.BytesIO()
    container: Any = av.open(buffer, "w", format="mp3", options={"id3v2_version": "0", "write_xing": "0"})
    with container:
        stream = container.add_stream("libmp3lame", rate=rate)
        stream.bit_rate = 48_000
        stream.layout = "mono"
        samples = np.frombuffer(sine_pcm(seconds, rate), dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


def _edge_text(request_id: str, path: str, body: str) -> str:
    return f"X-RequestId:{request_id}\r\nContent-Type:application/json; charset=utf-8\r\nPath:{path}\r\n\r\n{body}"


def _edge_audio(request_id: str, data: bytes) -> bytes:
    content_type = "Content-Type:audio/mpeg\r\n" if data else ""
    header = f"X-RequestId:{request_id}\r\n{content_type}X-StreamId:{uuid.uuid4().hex}\r\nPath:audio\r\n".encode()
    return len(header).to_bytes(2, "big") + header + data


def edge_app(service: FakeService, mp3: bytes) -> web.Application:
    async def synthesize(request: web.Request) -> web.StreamResponse:
        if service.mode.isdigit():
            service.requests.append(Recorded("/edge/v1", _headers(request), None))
            return web.Response(status=int(service.mode), text="refused")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        messages: list[str] = []
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            messages.append(message.data)
            if "Path:ssml" not in message.data:
                continue
            service.requests.append(Recorded("/edge/v1", _headers(request), list(messages)))
            request_id = message.data.split("X-RequestId:", 1)[1].split("\r\n", 1)[0]
            if service.mode == "hang":
                await _hang(request)
            await ws.send_str(_edge_text(request_id, "turn.start", '{"context":{"serviceTag":"fake"}}'))
            if service.mode != "no_audio":
                for index, start in enumerate(range(0, len(mp3), 2000)):
                    await ws.send_bytes(_edge_audio(request_id, mp3[start : start + 2000]))
                    await asyncio.sleep(0.005)
                    if index == 0 and service.mode == "cut":
                        await ws.close()
                        return ws
                metadata = {
                    "Metadata": [
                        {
                            "Type": "SentenceBoundary",
                            "Data": {
                                "Offset": 1_000_000,
                                "Duration": 5_000_000,
                                "text": {"Text": "Hello", "Length": 5, "BoundaryType": "SentenceBoundary"},
                            },
                        }
                    ]
                }
                await ws.send_str(_edge_text(request_id, "audio.metadata", json.dumps(metadata)))
                await ws.send_bytes(_edge_audio(request_id, b""))
            await ws.send_str(_edge_text(request_id, "turn.end", "{}"))
        return ws

    app = _app(service)
    app.router.add_get("/edge/v1", synthesize)
    return app
