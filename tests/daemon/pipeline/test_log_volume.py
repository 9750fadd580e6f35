"""What logging costs: lines per 1,000 messages at INFO, the canonical line at DEBUG, one stream."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.dev.simulate import generate
from ecswatch.logging import configure_logging
from tests.domain.test_properties import ConditionalTable, NoQueue

MESSAGES = 1_000


def run(level: str) -> tuple[list[dict[str, Any]], int, int]:
    """1,000 realistic messages (lifecycles, duplicates, failed starts) through a processor
    logging as the daemon does: (log lines, bytes written, failed starts in the stream)."""
    stream = generate(tasks=180, copies=2, seed=14, container_instances=2)
    bodies = stream.bodies()[:MESSAGES]
    assert len(bodies) == MESSAGES
    out = io.StringIO()
    configure_logging(level, "json", out)
    processor = Processor(
        ConditionalTable(),  # type: ignore[arg-type]
        NoQueue(),  # type: ignore[arg-type]
        Metrics(CollectorRegistry()),
    )  # the summary's minute does not pass in this run: at most one more line a minute
    for i, body in enumerate(bodies):
        processor.handle(Message(f"m{i}", f"r{i}", body))
    failed = sum(
        1
        for body in bodies
        if (d := json.loads(body)["detail"]).get("lastStatus") == "STOPPED" and "startedAt" not in d
    )
    text = out.getvalue()
    return [json.loads(line) for line in text.splitlines()], len(text.encode()), failed


@pytest.fixture(autouse=True)
def _restore_logging() -> Any:
    yield
    configure_logging("INFO", "json")


def test_info_writes_a_few_lines_per_thousand_messages_not_one_each() -> None:
    """At INFO: a line per task that failed to start (what an operator acts on) and the
    periodic summary; no per-message line. Measured: 29 lines (29 failed starts), 8.3 KB per
    1,000 messages, against 1,029 lines and 381 KB at DEBUG."""
    lines, size, failed = run("INFO")
    events = [line["event"] for line in lines]
    assert "message_processed" not in events
    assert events.count("task_failed_to_start") <= failed  # duplicates of one count once
    assert set(events) <= {"task_failed_to_start", "events_summary"}
    assert len(lines) <= failed + 1  # per 1,000 messages; one per message would be 1,000
    assert size <= 20_000


def test_debug_has_the_canonical_line_for_every_message() -> None:
    """At DEBUG each message has its `message_processed` line: id, ARN, version, outcome."""
    lines, _, _ = run("DEBUG")
    processed = [line for line in lines if line["event"] == "message_processed"]
    assert len(processed) == MESSAGES
    assert all(
        {"message_id", "arn", "version", "outcome", "duration_ms"} <= set(p) for p in processed
    )


def test_botocore_and_urllib3_records_are_json_lines_in_the_same_stream() -> None:
    """stdlib records go through structlog's renderer; their DEBUG (request bodies) never shows,
    even with ecswatch at DEBUG."""
    out = io.StringIO()
    configure_logging("DEBUG", "json", out)
    logging.getLogger("botocore.credentials").info("Found credentials in %s", "environment")
    logging.getLogger("botocore.endpoint").debug("Making request with body %s", "{...event...}")
    logging.getLogger("urllib3.connectionpool").warning("Retrying after %s", "reset")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["logger"], line["level"], line["event"]) for line in lines] == [
        ("botocore.credentials", "info", "Found credentials in environment"),
        ("urllib3.connectionpool", "warning", "Retrying after reset"),
    ]
    assert all("timestamp" in line for line in lines)


def test_at_info_botocore_says_only_what_goes_wrong() -> None:
    """Its per-client credential lines are not for an operator; its warnings are."""
    out = io.StringIO()
    configure_logging("INFO", "json", out)
    logging.getLogger("botocore.credentials").info("Found credentials in %s", "environment")
    logging.getLogger("botocore.retries").warning("Retry quota %s", "exceeded")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["Retry quota exceeded"]
