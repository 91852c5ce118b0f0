"""structlog set-up: JSON lines in production, readable lines in development (``logging.format``).

Every line passes :func:`redact_secrets` last before rendering, so API keys and tokens never reach a
log, whatever a provider or an exception message puts in it. Lines from the standard ``logging``
module (Hypercorn, libraries) go through the same processors and renderer.

A session logs through a :class:`SessionLog`: every line carries ``session_id``, ``turn`` and the
session's current ``state``, and is also handed to the session's recording.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol, TextIO

import structlog

from voicebot.settings import LoggingSettings

REDACTED = "[REDACTED]"

#: Field names whose values are secrets, whole (compared after lower-casing, ``-`` → ``_``).
_SECRET_NAMES = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "authorization",
        "proxy_authorization",
        "cookie",
        "set_cookie",
        "credentials",
        "api_key",
        "apikey",
        "secret_key",
        "private_key",
    }
)
#: ... and name endings that mark a secret (``openai_api_key``, ``access_token``, ``x_api_key``).
#: ``max_tokens`` or ``llm_first_token_ms`` are not secrets: only these exact endings count.
_SECRET_SUFFIXES = ("_api_key", "_apikey", "_token", "_secret", "_password", "_secret_key", "_private_key")

#: Values that look like credentials wherever they appear inside a string.
_SECRET_VALUES = re.compile(
    r"""
      \bsk-[A-Za-z0-9_\-]{8,}                       # OpenAI-style keys (sk-..., sk-proj-...)
    | \b(?:Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=\-]{8,}  # Authorization header values
    | \bgh[pousr]_[A-Za-z0-9]{20,}                  # GitHub tokens
    | \bhf_[A-Za-z0-9]{20,}                         # Hugging Face tokens
    | \bxox[abprs]-[A-Za-z0-9\-]{10,}               # Slack tokens
    | \bAKIA[0-9A-Z]{16}\b                          # AWS access key ids
    | \bAIza[0-9A-Za-z_\-]{30,}                     # Google API keys
    """,
    re.VERBOSE,
)
#: ``key=value`` pairs in URLs and messages whose value is a secret (``?api_key=...``, ``token=...``).
_SECRET_PARAMS = re.compile(r"(?i)\b((?:api[_-]?key|key|access[_-]?token|token|secret|password)=)[^&\s\"',;]+")


def is_secret_name(name: str) -> bool:
    """Whether a field called ``name`` holds a secret (``api_key``, ``Authorization``, ``access_token``…)."""
    normal = name.lower().replace("-", "_")
    return normal in _SECRET_NAMES or normal.endswith(_SECRET_SUFFIXES)


def redact_text(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``[REDACTED]``."""
    text = _SECRET_VALUES.sub(REDACTED, text)
    return _SECRET_PARAMS.sub(lambda match: match.group(1) + REDACTED, text)


def redact(value: Any) -> Any:
    """A copy of ``value`` (nested dicts, lists, strings) with secret fields and values redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {
            key: (REDACTED if isinstance(key, str) and is_secret_name(key) and item else redact(item))
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """structlog processor: redact secret fields and credential-looking values from every line."""
    redacted: structlog.typing.EventDict = redact(event_dict)
    return redacted


def configure_logging(settings: LoggingSettings, stream: TextIO | None = None) -> None:
    """Configure structlog and the standard ``logging`` module (used by Hypercorn) once per process.
    Lines go to ``stream`` (default: standard error)."""
    stream = stream if stream is not None else sys.stderr
    level = getattr(logging, settings.level.upper())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: structlog.typing.Processor
    if settings.format == "json":
        # Exceptions become data (then redacted) before rendering; without frame locals, which could
        # hold anything (keys, audio, a user's words).
        tracebacks = structlog.processors.ExceptionRenderer(
            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        )
        finish: list[structlog.typing.Processor] = [tracebacks, redact_secrets]
        renderer = structlog.processors.JSONRenderer()
    else:
        # Tracebacks are rendered to text here so that redaction also covers exception messages.
        finish = [structlog.processors.format_exc_info, redact_secrets]
        renderer = structlog.dev.ConsoleRenderer(
            colors=stream.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    structlog.configure(
        processors=[*shared, *finish, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    handler.set_name("voicebot")
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *finish, renderer],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "voicebot"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # transitions logs every callback at INFO; the session logs each state change itself.
    logging.getLogger("transitions").setLevel(max(level, logging.WARNING))


class LogSink(Protocol):
    """Receives every line a session logs (``session_id`` excluded): the session's recording."""

    def log(self, level: str, event: str, fields: dict[str, Any]) -> None:
        """A session line."""

    def turn_event(self, turn: int, at_ms: float | None, fields: dict[str, Any]) -> None:
        """A turn event (``fields`` holds its ``type``), timed in ms since the turn started."""


class SessionLog:
    """A session's logger. Every line is bound to ``session_id`` and, unless the call names them
    itself, to the session's current ``turn`` and ``state`` (read from ``context`` at each call).
    Each line also goes to ``sink`` (the session's recording)."""

    def __init__(self, session_id: str, context: Callable[[], dict[str, Any]], sink: LogSink | None = None) -> None:
        self._logger = structlog.get_logger("voicebot.session").bind(session_id=session_id)
        self._context = context
        self._sink = sink

    def turn_event(self, level: str, turn: int, kind: str, at_ms: float | None, fields: dict[str, Any]) -> None:
        """A turn event as a line named by its type; the recording keeps it as a ``turn`` line."""
        line = {**self._context(), "turn": turn, **({} if at_ms is None else {"at_ms": round(at_ms, 1)}), **fields}
        getattr(self._logger, level)(kind, **line)
        if self._sink is not None:
            self._sink.turn_event(turn, at_ms, {"type": kind, **fields})

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields)

    def exception(self, event: str, **fields: Any) -> None:
        """An error line with the exception being handled."""
        line = {**self._context(), **fields}
        self._logger.exception(event, **line)
        if self._sink is not None:
            error = sys.exc_info()[1]
            self._sink.log("error", event, {**line, "exception": f"{type(error).__name__}: {error}"})

    def _emit(self, level: str, event: str, fields: dict[str, Any]) -> None:
        line = {**self._context(), **fields}
        getattr(self._logger, level)(event, **line)
        if self._sink is not None:
            self._sink.log(level, event, line)
