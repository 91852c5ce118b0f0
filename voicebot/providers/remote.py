"""What the remote (HTTP and WebSocket) providers share: API keys from the environment, and turning
whatever their client libraries raise into a plain reason a person can act on.

Keys are read only from the environment variable the settings name, at start-up, and are never put
in a message or a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from voicebot.errors import ProviderFailed, ProviderUnavailable

#: Plain words for the HTTP statuses APIs answer with.
_STATUS_REASONS: dict[int, str] = {
    400: "the service refused the request as invalid",
    401: "the API key was refused",
    402: "the account has no credit left",
    403: "the API key may not use this service or model",
    404: "the model or endpoint was not found",
    408: "the service timed out",
    413: "the request was too large",
    422: "the service could not process the request",
    429: "rate limited or out of quota",
    500: "the service had an internal error",
    502: "the service is unavailable (bad gateway)",
    503: "the service is unavailable",
    504: "the service timed out (gateway)",
    529: "the service is overloaded",
}

#: Error ``type`` values of streamed error events (Anthropic sends these after a 200 OK).
_ERROR_TYPE_REASONS: dict[str, str] = {
    "overloaded_error": "the service is overloaded",
    "rate_limit_error": "rate limited or out of quota",
    "api_error": "the service had an internal error",
    "authentication_error": "the API key was refused",
    "permission_error": "the API key may not use this service or model",
    "not_found_error": "the model or endpoint was not found",
    "invalid_request_error": "the service refused the request as invalid",
}

#: Statuses whose message from the service is worth showing (it usually names the bad parameter).
_SHOW_MESSAGE = {400, 404, 422}


def api_key(variable: str, setting: str, environ: Mapping[str, str] | None = None) -> str:
    """The key in environment variable ``variable``, or :class:`ProviderUnavailable` naming it."""
    environ = os.environ if environ is None else environ
    key = environ.get(variable, "").strip()
    if not key:
        raise ProviderUnavailable(
            f"{setting} is {variable}, but the environment variable {variable} is not set. "
            f"Export it with your API key before starting voicebot (keys are never read from settings.yaml)."
        )
    return key


def _body_error(body: object) -> tuple[str | None, str | None]:
    """(type, message) of an API error body: ``{"error": {"type": …, "message": …}}`` or its inner dict."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, Mapping):
            kind, message = inner.get("type"), inner.get("message")
            return (kind if isinstance(kind, str) else None, message if isinstance(message, str) else None)
    return None, None


def http_status_reason(status: int, body: object = None) -> str:
    """A plain reason for an error status (and the service's own message where it helps)."""
    kind, message = _body_error(body)
    if status < 400:  # an error event inside a stream that had started with 200 OK
        return f"{_ERROR_TYPE_REASONS.get(kind or '', 'the service reported an error')} in the middle of the reply"
    reason = _STATUS_REASONS.get(status)
    if reason is None:
        reason = "the service had an error" if status >= 500 else "the service refused the request"
    reason = f"{reason} (HTTP {status})"
    if status in _SHOW_MESSAGE and message:
        reason += f": {message[:200]}"
    return reason


def describe_error(exc: BaseException) -> str:
    """A plain reason for an exception raised by the openai or anthropic client libraries (both
    generated from the same template), aiohttp, edge-tts or asyncio."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return http_status_reason(status, getattr(exc, "body", None))
    names = {cls.__name__ for cls in type(exc).__mro__}
    cause = exc.__cause__ or exc.__context__
    if cause is not None and "APIConnectionError" in names:  # the SDKs wrap the HTTP library's error
        names |= {cls.__name__ for cls in type(cause).__mro__}
    if "RemoteProtocolError" in names:
        return "the connection was cut off mid-way"
    if names & {"APITimeoutError", "TimeoutException", "ServerTimeoutError"} or isinstance(exc, TimeoutError):
        return "no answer in time"
    if names & {"APIConnectionError", "ConnectError", "ClientConnectorError"} or isinstance(exc, ConnectionError):
        return "could not connect to the service"
    if "WSServerHandshakeError" in names:
        status = getattr(exc, "status", 0)
        return http_status_reason(int(status)) if status else "the service refused the connection"
    if "ClientError" in names or "ServerDisconnectedError" in names:
        return f"the connection failed ({type(exc).__name__})"
    text = str(exc).strip()
    return text[:200] if text else type(exc).__name__


def host_and_port(url: str) -> tuple[str, int]:
    """The host and port a URL connects to (default ports by scheme)."""
    parts = urlsplit(url)
    default = 443 if parts.scheme in ("https", "wss") else 80
    return parts.hostname or "localhost", parts.port or default


async def tcp_reachable(url: str, timeout_s: float) -> None:
    """Open (and close) a TCP connection to the host of ``url``; raise if that fails in time."""
    host, port = host_and_port(url)
    async with asyncio.timeout(timeout_s):
        _reader, writer = await asyncio.open_connection(host, port)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


@contextlib.contextmanager
def failures_as(provider: str) -> Iterator[None]:
    """Turn whatever a client library raises inside the block (its own errors, its HTTP library's, a
    cut stream) into :class:`ProviderFailed` with a plain reason; a ``ProviderFailed`` passes as is."""
    try:
        yield
    except ProviderFailed:
        raise
    except Exception as exc:
        raise ProviderFailed(provider, describe_error(exc)) from exc
