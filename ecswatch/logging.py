"""structlog, configured once: JSON lines for machines, a console renderer on a terminal; the
stdlib loggers (botocore, urllib3, ...) rendered by the same processors into the same stream."""

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
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    rendering: list[structlog.typing.Processor] = (
        [structlog.dev.ConsoleRenderer()]
        if console
        else [TRACEBACKS, structlog.processors.JSONRenderer()]
    )
    numeric_level = logging.getLevelName(level)
    structlog.configure(
        processors=[*shared, *rendering],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        cache_logger_on_first_use=cache,
    )
    _route_stdlib(out, shared, rendering, numeric_level)


#: tracebacks as structured JSON, without frame locals: a frame's locals may hold a whole event
TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)

#: stdlib loggers whose DEBUG output holds request and response bodies (whole events): never
#: below INFO, whatever the level, so no log line ever carries an event; at INFO, warnings only.
BODY_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer")


def _route_stdlib(
    out: TextIO,
    shared: list[structlog.typing.Processor],
    rendering: list[structlog.typing.Processor],
    level: int,
) -> None:
    """One handler on the root logger, formatting each record with structlog's own chain, so a
    botocore warning is a JSON line like ours (with `logger`), not a line of plain text."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *rendering],
    )
    handler = _Handler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)  # reconfiguration replaces ours, keeps anyone else's
    root.addHandler(handler)
    root.setLevel(level)
    # Their INFO ("Found credentials in ...", once per client) is nothing to act on: shown from
    # DEBUG only; their own DEBUG never.
    quiet = logging.INFO if level < logging.INFO else max(level, logging.WARNING)
    for name in BODY_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """ecswatch's root handler, told apart from others' on reconfiguration."""
