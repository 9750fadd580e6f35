"""Start-up checks: a misconfigured table or DLQ exits 2 naming the key; an endpoint that
refuses connections is waited out while /healthz answers."""

from __future__ import annotations

import socket

from tests.conftest import Stack, http_get, wait_for
from tests.integration.daemon_process import DaemonProcess


def test_a_table_keyed_on_another_attribute_exits_2_naming_the_table(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """A task table keyed on `id` would fail every write: refuse to start instead."""
    stack.dynamodb.create_table(
        TableName="Elsewhere",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    proc = DaemonProcess(stack.daemon_environment(ECSWATCH_DYNAMODB_TASK_TABLE="Elsewhere"))
    processes.append(proc)
    assert proc.wait() == 2
    err = proc.stderr_text()
    assert "dynamodb.task_table" in err and "Elsewhere" in err and "taskArn" in err
    assert "Traceback" not in err


def test_a_dead_letter_queue_equal_to_the_queue_exits_2(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """Dead-lettering into the source queue would loop: refuse to start."""
    env = stack.daemon_environment(ECSWATCH_SQS_DEAD_LETTER_QUEUE_URL=stack.resources.queue_url)
    proc = DaemonProcess(env)
    processes.append(proc)
    assert proc.wait() == 2
    assert "sqs.dead_letter_queue_url" in proc.stderr_text()


def test_an_endpoint_refusing_connections_is_waited_out_with_healthz_green(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """ECS must not kill a task whose AWS is not reachable yet: healthy, not ready, retrying."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = DaemonProcess(
        stack.daemon_environment(ECSWATCH_AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    )
    processes.append(proc)
    wait_for(lambda: len(proc.events("preflight_waiting")) >= 2, timeout=30)
    assert http_get(f"http://127.0.0.1:{proc.port}/healthz")[0] == 200
    assert http_get(f"http://127.0.0.1:{proc.port}/readyz")[0] == 503
    assert proc.proc.poll() is None
    assert proc.terminate()[0] == 0
