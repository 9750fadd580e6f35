"""The SQS side under faults: throttled receives, deletes and visibility changes, and batches
whose entries partly fail: nothing lost, nothing spins, the final state exact."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from ecswatch.dev.emulator import SQS_THROTTLED
from ecswatch.dev.simulate import generate
from tests.conftest import Running, Stack, wait_for

pytestmark = pytest.mark.slow


def test_faults_on_every_sqs_call_kind_lose_nothing(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Receive, DeleteMessageBatch and ChangeMessageVisibilityBatch throttled or partly failed."""
    faults = stack.emulator.faults
    faults.sqs_operations = ("ReceiveMessage", "DeleteMessageBatch", "ChangeMessageVisibilityBatch")
    faults.sqs_error, faults.sqs_share = SQS_THROTTLED, 0.25
    faults.batch_entry_failure_share = 0.3
    faults.stall_share, faults.stall_seconds = 0.2, 2.5  # long enough for a heartbeat
    stream = generate(tasks=12, copies=2, seed=17)
    running = start_daemon(sqs={"visibility_timeout": 5})
    stack.send(*stream.bodies())
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=90)
    injected = dict(stack.emulator.injector.injected)
    faults.reset()
    assert stack.stored() == stream.truth.final
    assert running.failed_starts() == stream.truth.failed_starts
    assert stack.dead_letters() == []
    assert injected["sqs_error"] > 0 and injected["batch_entry"] > 0
    requests = stack.emulator.injector.requests
    assert requests["AmazonSQS.ChangeMessageVisibilityBatch"] > 0  # the heartbeat ran too
