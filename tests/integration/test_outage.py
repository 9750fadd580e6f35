"""Systemic outages with two real `ecswatch run` replicas: AccessDenied on every DynamoDB call,
the tables deleted then re-created, throttling of every write. Each lasts longer than
maxReceiveCount x visibility, the stream is sent during it, and afterwards every ARN is at its
max version, the PENDING->STOPPED counter is exact and no valid message is in the DLQ."""

from __future__ import annotations

import collections
import json
import time
from collections.abc import Callable

import pytest

from ecswatch.commands.bootstrap import bootstrap
from ecswatch.dev.emulator import ACCESS_DENIED
from ecswatch.dev.simulate import generate
from tests.conftest import Stack, http_get, make_clients, wait_for
from tests.integration.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow

VISIBILITY = 5
MAX_RECEIVE_COUNT = 2
OUTAGE_SECONDS = MAX_RECEIVE_COUNT * VISIBILITY + 2


def deny(stack: Stack) -> Callable[[], None]:
    stack.emulator.faults.dynamodb_error = ACCESS_DENIED
    return stack.emulator.faults.reset


def delete_tables(stack: Stack) -> Callable[[], None]:
    tables = stack.config.dynamodb
    for table in (tables.task_table, tables.container_instance_table):
        stack.dynamodb.delete_table(TableName=table)

    def recreate() -> None:
        bootstrap(stack.config, **make_clients(stack.emulator.url))

    return recreate


def throttle(stack: Stack) -> Callable[[], None]:
    stack.emulator.faults.throttle_share = 1.0
    stack.emulator.faults.operations = ("PutItem", "UpdateItem")
    return stack.emulator.faults.reset


def failed_starts(replicas: list[DaemonProcess]) -> collections.Counter[tuple[str, str, str]]:
    counted: collections.Counter[tuple[str, str, str]] = collections.Counter()
    for replica in replicas:
        for (name, labels), value in replica.metrics().items():
            if name == "ecswatch_tasks_pending_to_stopped_total" and value:
                found = dict(labels)
                counted[(found["cluster"], found["group"], found["stop_code"])] += int(value)
    return counted


def paused_as(replica: DaemonProcess, reason: str) -> bool:
    status, text = http_get(f"http://127.0.0.1:{replica.port}/readyz")
    return (
        status == 503
        and f"paused: {reason}" in text
        and replica.metric("ecswatch_paused", reason=reason) == 1
    )


@pytest.mark.parametrize(
    ("outage", "reason"),
    [(deny, "access_denied"), (delete_tables, "missing_resource"), (throttle, "throttling")],
)
def test_an_outage_pauses_both_replicas_and_no_valid_message_reaches_the_dlq(
    stack: Stack,
    processes: list[DaemonProcess],
    outage: Callable[[Stack], Callable[[], None]],
    reason: str,
) -> None:
    """A long DynamoDB outage pauses consumers instead of draining the queue into the DLQ."""
    dlq_arn = stack.sqs.get_queue_attributes(
        QueueUrl=stack.resources.dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    stack.sqs.set_queue_attributes(
        QueueUrl=stack.resources.queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)}
    )
    env = stack.daemon_environment(
        ECSWATCH_SQS_VISIBILITY_TIMEOUT=str(VISIBILITY),
        ECSWATCH_WORKERS_COUNT="2",
        ECSWATCH_METRICS_SERVICE_STATE_REFRESH_SECONDS="0",
    )
    replicas = [DaemonProcess(env), DaemonProcess(env)]
    processes.extend(replicas)
    for replica in replicas:
        wait_for(lambda r=replica: http_get(f"http://127.0.0.1:{r.port}/readyz")[0] == 200, 30)
    heal = outage(stack)
    started = time.monotonic()
    stream = generate(tasks=20, copies=2, seed=12)
    stack.send(*stream.bodies())
    for replica in replicas:
        wait_for(lambda r=replica: paused_as(r, reason), timeout=OUTAGE_SECONDS + 15)
    time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - started)))
    heal()
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=60)
    assert stack.stored() == stream.truth.final
    assert stack.dead_letters() == []
    assert failed_starts(replicas) == stream.truth.failed_starts
    for replica in replicas:
        assert replica.metric("ecswatch_paused", reason=reason) == 0
        assert len(replica.events("consumer_paused")) >= 1
        assert replica.terminate()[0] == 0
