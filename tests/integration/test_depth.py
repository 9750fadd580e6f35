"""Queue depths come from ecswatch itself: a DLQ that SQS's redrive filled shows in /metrics."""

from __future__ import annotations

from collections.abc import Callable

from tests.conftest import Running, Stack, wait_for


def test_dead_letter_and_source_depths_are_exported(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Messages that reached the DLQ without ecswatch (redrive) are counted by state."""
    for body in ("a", "b"):
        stack.sqs.send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody=body)
    running = start_daemon()
    dead = {"queue": "dead_letter", "state": "visible"}
    wait_for(lambda: running.value("ecswatch_queue_messages", **dead) == 2, timeout=15)
    assert (
        running.registry.get_sample_value(
            "ecswatch_queue_messages", {"queue": "source", "state": "delayed"}
        )
        == 0
    )
