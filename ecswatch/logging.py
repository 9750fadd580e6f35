"""structlog, configured once: JSON lines for machines, a console renderer on a terminal."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog


def renders_json(fmt: str, stream: TextIO) -> bool:
    """Whether `fmt` ("auto" | "json" | "console") means JSON lines on `stream`."""
    return fmt == "json" or (fmt == "auto" and not stream.isatty())


def configure_logging(
    level: str = "INFO", fmt: str = "auto", stream: TextIO | None = None, *, cache: bool = False
) -> None:
    """Processors, level and output for every structlog logger.

    Levels are filtered before anything renders: below the level, a call is a no-op method.
    `cache=True` (the daemon) makes each module's logger bind once instead of on every call,
    which is most of what a filtered-out DEBUG line costs; it also freezes the configuration
    for loggers already used, so tests (structlog.testing.capture_logs) leave it off.
    """
    out = stream or sys.stderr
    console = not renders_json(fmt, out)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer())
    else:
        processors += [
            structlog.processors.dict_tracebacks,
            structlog.processors.JSONRenderer(),
        ]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )
