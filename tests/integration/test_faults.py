"""Throttling, 5xx and slow writes from the emulator: nothing lost, retries counted, no re-runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ecswatch.dev.simulate import generate
from tests.conftest import Running, Stack, wait_for

pytestmark = pytest.mark.slow

STATE_CHANGES = ("ECS Task State Change", "ECS Container Instance State Change")


def test_throttled_and_failing_writes_are_retried_until_applied(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    stack.emulator.faults.throttle_share = 0.3
    stack.emulator.faults.server_error_share = 0.1
    stream = generate(tasks=16, copies=2, seed=3)
    # A short visibility, so a message whose retries ran out comes back quickly.
    running = start_daemon(sqs={"visibility_timeout": 5})
    stack.send(*stream.bodies())
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=90)
    stack.emulator.faults.reset()
    items = stack.task_items() | stack.items(stack.config.dynamodb.container_instance_table)
    assert {arn: int(i["version"]) for arn, i in items.items()} == {
        arn: version for arn, (version, _) in stream.truth.final.items()
    }
    injected = stack.emulator.injector.injected
    assert injected["throttle"] > 0
    assert injected["server_error"] > 0
    # Every injected fault was either retried (and counted) or, past the policy, a failed
    # event left for redelivery: none vanished.
    retries = running.value("ecswatch_retries_total", operation="PutItem")
    failed = sum(running.events("failed", k) for k in STATE_CHANGES)
    assert retries + failed == injected["throttle"] + injected["server_error"]
    # ... and every PutItem the emulator saw was one of this daemon's timed attempts.
    attempts = sum(
        running.value("ecswatch_write_seconds_count", table=t)
        for t in ("ECSTaskState", "ECSCtrInstanceState")
    )
    assert attempts == stack.emulator.injector.requests["DynamoDB_20120810.PutItem"]
    assert running.failed_starts() == stream.truth.failed_starts


def test_a_slow_write_is_heartbeated_not_processed_twice(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    # Every write stalls 7 s, longer than the 5 s visibility: only the heartbeat keeps the
    # message from reappearing for the other worker while the first one still writes it.
    stack.emulator.faults.stall_share = 1.0
    stack.emulator.faults.stall_seconds = 7.0
    running = start_daemon(workers={"count": 2}, sqs={"visibility_timeout": 5})
    [body] = generate(tasks=1, copies=1, seed=1, container_instances=0).bodies()[:1]
    stack.send(body)
    wait_for(lambda: running.processed() >= 1, timeout=30)
    stack.emulator.faults.reset()
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=10)
    assert running.events("applied") == 1
    assert running.events("duplicate") == 0
    assert running.value("ecswatch_messages_received_total") == 1
