"""structlog set-up: JSON lines in production, readable lines in development (``logging.format``).

Session code binds ``session_id`` on its logger and passes ``turn`` and ``state`` on every line, so a
session's lines can be pulled out of a busy log and read in order.
"""

from __future__ import annotations

import logging
import sys

import structlog

from voicebot.settings import LoggingSettings


def configure_logging(settings: LoggingSettings) -> None:
    """Configure structlog (and the standard ``logging`` module used by Hypercorn) once per process."""
    level = getattr(logging, settings.level.upper())
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: list[structlog.typing.Processor]
    if settings.format == "json":
        renderer = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    structlog.configure(
        processors=[*shared, *renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
