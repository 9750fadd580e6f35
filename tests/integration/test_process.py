"""`ecswatch run` in a subprocess: exit codes, SIGTERM, and several replicas on one queue."""

from __future__ import annotations

import json
import socket

import pytest

from ecswatch.dev.simulate import ACCOUNT, REGION, generate
from tests.conftest import Stack, http_get, wait_for
from tests.integration.daemon_process import DaemonProcess

TASK = "ECS Task State Change"
STATE_CHANGES = (TASK, "ECS Container Instance State Change")


def test_bad_config_exits_2_with_one_line_naming_the_key(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    proc = DaemonProcess(stack.daemon_environment(ECSWATCH_WORKERS_COUNT="lots"))
    processes.append(proc)
    assert proc.wait() == 2
    err = proc.stderr_text()
    assert err.strip().count("\n") == 0
    assert "ECSWATCH_WORKERS_COUNT" in err
    assert "Traceback" not in err


def test_missing_queue_url_exits_2(stack: Stack, processes: list[DaemonProcess]) -> None:
    env = stack.daemon_environment()
    del env["ECSWATCH_SQS_QUEUE_URL"]
    proc = DaemonProcess(env)
    processes.append(proc)
    assert proc.wait() == 2
    assert "sqs.queue_url" in proc.stderr_text()


@pytest.mark.slow
def test_sigterm_under_load_exits_0_in_time_and_loses_nothing(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    stream = generate(tasks=30, copies=2, seed=5)
    stack.send(*stream.bodies())
    env = stack.daemon_environment(
        ECSWATCH_WORKERS_SHUTDOWN_TIMEOUT="8", ECSWATCH_SQS_WAIT_TIME_SECONDS="5"
    )
    first = DaemonProcess(env)
    processes.append(first)
    wait_for(lambda: first.total("ecswatch_events_total", detail_type=TASK) >= 20, timeout=60)
    code, seconds = first.terminate()
    assert code == 0, first.stderr_text()[-2000:]
    assert seconds < 8
    assert first.events("ecswatch_stopped")[0]["drained"] is True
    # Everything it received was deleted or made visible again: nothing is left invisible.
    assert stack.queue_counts()[1] == 0
    # A second replica finishes the job; the final state is exact.
    second = DaemonProcess(env)
    processes.append(second)
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=90)
    assert stack.stored() == stream.truth.final
    assert second.terminate()[0] == 0


@pytest.mark.slow
def test_two_replicas_on_one_queue_never_double_count(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    stream = generate(tasks=24, copies=3, seed=21)
    env = stack.daemon_environment(ECSWATCH_WORKERS_COUNT="3")
    replicas = [DaemonProcess(env), DaemonProcess(env)]
    processes.extend(replicas)
    for replica in replicas:
        wait_for(lambda r=replica: http_get(f"http://127.0.0.1:{r.port}/readyz")[0] == 200)
    stack.send(*stream.bodies())
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=120)
    assert stack.stored() == stream.truth.final
    for (cluster, group, stop_code), expected in stream.truth.failed_starts.items():
        counted = sum(
            r.metric(
                "ecswatch_tasks_pending_to_stopped_total",
                account=ACCOUNT,
                region=REGION,
                cluster=cluster,
                group=group,
                stop_code=stop_code,
            )
            for r in replicas
        )
        assert counted == expected
    assert sum(r.total("ecswatch_tasks_pending_to_stopped_total") for r in replicas) == sum(
        stream.truth.failed_starts.values()
    )
    # Both replicas took part, and between them every version was applied at most once.
    applied = [
        sum(
            r.metric("ecswatch_events_total", detail_type=k, outcome="applied")
            for k in STATE_CHANGES
        )
        for r in replicas
    ]
    assert all(n > 0 for n in applied)
    assert sum(applied) <= stream.truth.distinct_events
    for replica in replicas:
        assert replica.terminate()[0] == 0


def test_unexpected_fatal_error_exits_1_logged_once_as_json(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = DaemonProcess(stack.daemon_environment(ECSWATCH_METRICS_PORT=str(port)))
        processes.append(proc)
        assert proc.wait() == 1
    text = proc.stderr_text()
    fatal = [json.loads(line) for line in text.splitlines() if '"fatal_error"' in line]
    assert len(fatal) == 1
    assert fatal[0]["level"] == "error"
    assert "Address already in use" in json.dumps(fatal[0]["exception"])
