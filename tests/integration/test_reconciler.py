"""Reconciliation inside the daemon: its thread, the lease between replicas, throttling, stop."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from ecswatch.daemon.state.store import Outcome
from ecswatch.dev.simulate import Service, generate, service_event
from ecswatch.domain.events import TASK_STATE_CHANGE, parse_message
from ecswatch.domain.services import ServiceEvent
from tests.conftest import Running, Stack, wait_for
from tests.integration.daemon_process import DaemonProcess
from tests.integration.test_reconcile import ecs_with_tasks, put_task, task_arn
from tests.integration.test_service_health import service_store

# A 6 s lease: its requests time out within 2 s (guard.attempt_timeouts), ample on moto.
FAST = {"interval_seconds": 1.0, "lease_seconds": 6.0, "max_api_calls_per_second": 50.0}


def lease_item(stack: Stack) -> dict[str, object]:
    item = stack.dynamodb.get_item(
        TableName=stack.config.dynamodb.service_table,
        Key={"serviceArn": {"S": "ecswatch:lease:reconcile"}},
        ConsistentRead=True,
    ).get("Item", {})
    return {k: next(iter(v.values())) for k, v in item.items()}


def test_daemon_seeds_the_table_and_marks_a_lost_stop(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Tasks running before ecswatch started are seeded; one whose STOPPED was lost is marked."""
    _, arns = ecs_with_tasks(stack, 3)
    lost = task_arn("stopped-while-we-were-away")
    put_task(stack, lost, 7, "RUNNING")
    running = start_daemon(reconcile=FAST)
    fixed = lambda kind: running.value(  # noqa: E731
        "ecswatch_reconcile_fixes_total", account="123456789012", region="us-east-1",
        cluster="prod", resource="task", kind=kind,
    )  # fmt: skip
    wait_for(lambda: fixed("added") == 3 and fixed("marked_stopped") == 1)
    items = stack.task_items()
    assert {arn: items[arn]["version"] for arn in arns} == dict.fromkeys(arns, 2)
    assert (items[lost]["lastStatus"], items[lost]["version"]) == ("STOPPED", 7)
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="success") >= 2)
    assert fixed("added") == 3  # later passes find nothing left to fix
    assert running.value("ecswatch_reconcile_leader") == 1
    assert running.value("ecswatch_reconcile_last_success_timestamp_seconds") > time.time() - 60
    assert running.value("ecswatch_reconcile_api_calls_total", operation="DescribeTasks") >= 2


@pytest.mark.slow
def test_throttled_ecs_slows_passes_which_still_finish_and_events_flow(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Half of all ECS calls throttled: passes back off and finish; events are unaffected."""
    ecs_with_tasks(stack, 20)
    stack.emulator.ecs.throttle_share = 0.5
    stream = generate(tasks=12, copies=1, seed=3, container_instances=1)
    running = start_daemon(reconcile={**FAST, "max_api_calls_per_second": 20.0})
    stack.send(*stream.bodies())
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="success") >= 1,
             timeout=60)  # fmt: skip
    wait_for(
        lambda: stack.queue_counts() == (0, 0) and running.processed() >= len(stream.envelopes)
    )
    assert stack.emulator.ecs.throttled > 0
    throttles = sum(
        running.value("ecswatch_reconcile_throttles_total", operation=op)
        for op in ("ListClusters", "ListTasks", "DescribeTasks", "ListContainerInstances",
                   "DescribeContainerInstances")
    )  # fmt: skip
    assert throttles > 0
    assert running.value("ecswatch_reconcile_passes_total", result="failed") == 0
    assert running.events("invalid", TASK_STATE_CHANGE) == 0
    stored = stack.stored()
    assert all(stored[arn][0] >= version for arn, (version, _) in stream.truth.final.items())


def _pass_starts(proc: DaemonProcess) -> list[float]:
    """When each pass started, as recorded in the lease item (the fleet's rhythm)."""
    return [float(entry["started_at"]) for entry in proc.events("reconcile_pass_started")]


@pytest.mark.slow
def test_two_daemons_pass_once_per_interval_and_the_survivor_takes_over(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """One lease: one pass per interval across replicas; SIGKILL → the other within one lease."""
    ecs_with_tasks(stack, 2)
    env = stack.daemon_environment(
        ECSWATCH_RECONCILE_INTERVAL_SECONDS="2", ECSWATCH_RECONCILE_LEASE_SECONDS="3"
    )
    first = DaemonProcess(env)
    processes.append(first)
    wait_for(lambda: first.events("reconcile_pass_finished"), timeout=30)
    second = DaemonProcess(env)
    processes.append(second)
    wait_for(lambda: second.events("ecswatch_starting"), timeout=30)
    wait_for(lambda: len(first.events("reconcile_pass_finished")) >= 4, timeout=30)
    assert second.events("reconcile_pass_started") == []  # the lease is held: never twice
    starts = _pass_starts(first)
    assert all(b - a >= 2 - 0.05 for a, b in itertools.pairwise(starts)), starts

    first.proc.kill()
    killed = time.time()
    taken = wait_for(lambda: second.events("reconcile_lease_taken"), timeout=30)
    took = datetime.fromisoformat(taken[0]["timestamp"]).timestamp() - killed
    assert took <= 3 + 1.5, f"takeover {took:.1f}s after SIGKILL, lease 3 s"
    wait_for(lambda: second.events("reconcile_pass_finished"), timeout=30)
    # A pass started by the dead leader is not repeated early: the rhythm survives the handover.
    all_starts = sorted(_pass_starts(first) + _pass_starts(second))
    assert all(b - a >= 2 - 0.05 for a, b in itertools.pairwise(all_starts))

    code, _ = second.terminate()
    assert code == 0
    assert lease_item(stack)["leaseOwner"] == ""  # released on a clean stop: no wait for expiry


def test_service_counts_from_the_api_on_every_replica_and_gone_with_the_service(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """desired/running/pending come from DescribeServices via the table, even with no events."""
    ecs, _ = ecs_with_tasks(stack, 0)
    for name, desired in (("web", 3), ("batch", 1)):
        ecs.create_service(cluster="prod", serviceName=name, taskDefinition="web",
                           desiredCount=desired)  # fmt: skip
    leader = start_daemon(reconcile=FAST, metrics={"service_state_refresh_seconds": 0.2})
    other = start_daemon(metrics={"service_state_refresh_seconds": 0.2})  # reconciliation off
    labels = {"account": "123456789012", "region": "us-east-1", "cluster": "prod"}
    gauge = lambda running, name, service: running.registry.get_sample_value(  # noqa: E731
        f"ecswatch_service_{name}_tasks", {**labels, "service": service}
    )  # fmt: skip
    for replica in (leader, other):
        wait_for(lambda r=replica: gauge(r, "desired", "web") == 3)
        assert (gauge(replica, "running", "web"), gauge(replica, "pending", "web")) == (0, 3)
        assert gauge(replica, "desired", "batch") == 1
    impaired = parse_message(json.dumps(service_event(
        Service("prod", "batch", "img"), "action", "SERVICE_TASK_START_IMPAIRED", datetime.now(UTC)
    )))  # fmt: skip
    assert isinstance(impaired, ServiceEvent)
    assert service_store(stack).apply(impaired) is Outcome.APPLIED
    impairment = "ecswatch_service_task_start_impaired"
    for replica in (leader, other):
        wait_for(lambda r=replica: r.registry.get_sample_value(
            impairment, {**labels, "service": "batch"}) == 1.0)  # fmt: skip
    ecs.delete_service(cluster="prod", service="batch", force=True)
    wait_for(lambda: gauge(other, "desired", "batch") is None)
    assert gauge(other, "desired", "web") == 3
    # Deleted: its impairment goes too, instead of alerting until the idle expiry.
    for replica in (leader, other):
        wait_for(lambda r=replica: r.registry.get_sample_value(
            impairment, {**labels, "service": "batch"}) is None)  # fmt: skip


def test_stop_abandons_a_pass_in_progress_and_releases_the_lease(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """A pass slowed to 0.2 ECS calls/s is abandoned at stop, well inside shutdown_timeout."""
    ecs_with_tasks(stack, 2)
    running = start_daemon(reconcile={**FAST, "max_api_calls_per_second": 0.2})
    wait_for(lambda: lease_item(stack).get("leaseOwner"))
    started = time.monotonic()
    assert running.daemon.stop()
    took = time.monotonic() - started
    assert running.value("ecswatch_reconcile_passes_total", result="aborted") == 1
    assert running.value("ecswatch_reconcile_passes_total", result="success") == 0
    assert lease_item(stack)["leaseOwner"] == ""
    assert took < stack.config.workers.shutdown_timeout, took


def test_a_lost_failed_start_is_counted_once_by_the_pass_not_again_by_its_late_event(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """A task STOPPED without ever starting, its events lost: the pass writes and counts it."""
    ecs, arns = ecs_with_tasks(stack, 2)
    ecs.stop_task(cluster="prod", task=arns[0], reason="CannotPullContainerError")
    running = start_daemon(reconcile=FAST)
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="success") >= 2)
    item = stack.task_items()[arns[0]]
    assert (item["lastStatus"], item["version"]) == ("STOPPED", 5)
    assert sum(running.failed_starts().values()) == 1
    # The lost event turns up after all: a duplicate, not a second count.
    stack.send_events([{
        "source": "aws.ecs", "detail-type": "ECS Task State Change", "id": "late",
        "detail": {**{k: item[k] for k in ("taskArn", "clusterArn", "group")},
                   "lastStatus": "STOPPED", "version": 5},
    }])  # fmt: skip
    wait_for(lambda: running.events("duplicate") == 1)
    assert sum(running.failed_starts().values()) == 1
