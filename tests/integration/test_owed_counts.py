"""Stop counts whoever writes first — event, daemon pass or `ecswatch reconcile --apply` — are
counted exactly once, by a process that exports them, with account and region (issue 21 §2)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry

from ecswatch.cli import main
from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import Retrier, RetryPolicy
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.reconcile.drift import TASKS, Pass
from ecswatch.daemon.state.owed import OwingStore
from ecswatch.daemon.state.store import Outcome, Store
from ecswatch.domain.deaths import OWED_FROM, Before
from ecswatch.domain.events import Event, Resource, build_item, parse_message
from tests.conftest import REGION, Running, Stack, wait_for
from tests.integration.test_reconcile import ACCOUNT, OWN_PROD, ecs_with_tasks, env, task_event
from tests.integration.test_reconciler import FAST

__all__ = ["env"]  # the fixture, for pytest
ARN = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/owed1"
PULL = "CannotPullContainerError: pull image manifest has been retried 5 time(s): not found"
TIMES = {
    "createdAt": "2026-11-20T10:00:00Z",
    "pullStartedAt": "2026-11-20T10:00:04Z",
    "pullStoppedAt": "2026-11-20T10:00:09Z",
}


def stores(stack: Stack) -> tuple[OwingStore, Store, Store]:
    """The command's store and two daemons' stores, on the stack's tables."""
    made = []
    for cls in (OwingStore, Store, Store):
        client = make_client("dynamodb", stack.config.aws)
        retrier = Retrier(RetryPolicy(attempts=3, max_seconds=10), abort=threading.Event())
        made.append(cls(client, stack.config.dynamodb.state_tables(), retrier))
    return made[0], made[1], made[2]  # type: ignore[return-value]


def event(version: int, status: str, **detail: Any) -> Event:
    body = task_event(ARN, version, status, **detail)
    parsed = parse_message(json.dumps(body))
    assert isinstance(parsed, Event)
    return parsed


def write(store: Store, e: Event) -> Any:
    return store.apply(e, build_item(e, now=datetime.now(UTC), stopped_task_ttl_days=7))


def counted(metrics: Metrics, store: Store, e: Event) -> Outcome:
    result = write(store, e)
    if result.count_from is not None:
        metrics.tasks.count_task(e, result.count_from)
    return result.outcome


def stopped_total(registry: CollectorRegistry, **labels: str) -> float:
    total = 0.0
    for metric in registry.collect():
        for s in metric.samples:
            if s.name == "ecswatch_tasks_stopped_total" and labels.items() <= s.labels.items():
                total += s.value
    return total


def test_a_stop_the_command_applied_is_counted_once_by_the_first_daemon_to_see_it(
    stack: Stack,
) -> None:
    """The command's STOPPED write owes its count; the real event's duplicate pays it, once."""
    command, daemon_a, daemon_b = stores(stack)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert counted(metrics, daemon_a, event(1, "PENDING")) is Outcome.APPLIED
    stop = event(2, "STOPPED", stopCode="TaskFailedToStart", stoppedReason=PULL)
    assert write(command, stop).outcome is Outcome.APPLIED
    assert stack.task_items()[ARN][OWED_FROM] == "PENDING"
    assert counted(metrics, daemon_a, stop) is Outcome.DUPLICATE
    assert counted(metrics, daemon_b, stop) is Outcome.DUPLICATE
    assert counted(metrics, daemon_a, stop) is Outcome.DUPLICATE
    assert OWED_FROM not in stack.task_items()[ARN]
    labels = {"account": ACCOUNT, "region": REGION, "cluster": "prod", "group": "service:web"}
    assert stopped_total(registry, **labels, cause="image_pull", started="false") == 1
    assert (
        registry.get_sample_value(
            "ecswatch_tasks_pending_to_stopped_total", {**labels, "stop_code": "TaskFailedToStart"}
        )
        == 1
    )


def test_a_newer_version_pays_the_owed_count_from_the_earliest_uncounted_state(
    stack: Stack,
) -> None:
    """Two command writes (RUNNING, then STOPPED) owe from the start; a newer event pays both."""
    command, daemon, _ = stores(stack)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    started = {**TIMES, "startedAt": "2026-11-20T10:00:10Z"}
    write(command, event(2, "RUNNING", **started))
    oom = [{"name": "web", "exitCode": 137, "reason": "OutOfMemoryError: Container killed"}]
    dying = {**started, "stoppedAt": "2026-11-20T10:01:10Z", "containers": oom,
             "stopCode": "EssentialContainerExited"}  # fmt: skip
    write(command, event(3, "STOPPED", **dying))
    owed = stack.task_items()[ARN]
    assert (owed[OWED_FROM], owed["countOwedStarted"]) == ("", False)
    assert counted(metrics, daemon, event(4, "STOPPED", **dying)) is Outcome.APPLIED
    assert counted(metrics, daemon, event(3, "STOPPED", **dying)) is Outcome.STALE
    assert stopped_total(registry, cause="oom", started="true") == 1
    assert registry.get_sample_value(
        "ecswatch_container_oom_kills_total",
        {"account": ACCOUNT, "region": REGION, "cluster": "prod", "group": "service:web",
         "container": "web"},
    ) == 1  # fmt: skip
    phases = {"account": ACCOUNT, "region": REGION, "cluster": "prod"}
    for phase in ("provisioning", "pull", "start"):
        assert (
            registry.get_sample_value(
                "ecswatch_task_start_phase_seconds_count", {**phases, "phase": phase}
            )
            == 1
        )
    assert (
        registry.get_sample_value(
            "ecswatch_failed_task_lifetime_seconds_sum", {**phases, "group": "service:web"}
        )
        == 60
    )


def test_the_command_never_owes_what_was_already_counted(stack: Stack) -> None:
    """A STOPPED→STOPPED catch-up by the command owes nothing: the first stop was counted."""
    command, daemon, _ = stores(stack)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    counted(metrics, daemon, event(2, "STOPPED", stopCode="UserInitiated"))
    write(command, event(3, "STOPPED", stopCode="UserInitiated"))
    assert OWED_FROM not in stack.task_items()[ARN]
    assert counted(metrics, daemon, event(3, "STOPPED", stopCode="UserInitiated")) is (
        Outcome.DUPLICATE
    )
    assert stopped_total(registry) == 1
    assert write(daemon, event(3, "STOPPED")).count_from is None
    assert write(daemon, event(4, "STOPPED")).count_from == Before("STOPPED", False)


def test_a_failed_start_the_daemon_pass_finds_counts_once_with_account_and_region(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """The pass's write counts under the task's account and region, like its event would."""
    ecs, arns = ecs_with_tasks(stack, 1)
    ecs.stop_task(cluster="prod", task=arns[0], reason=PULL)
    running = start_daemon(reconcile=FAST)
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="success") >= 2)
    labels = {"account": ACCOUNT, "region": REGION, "cluster": "prod"}
    failed = running.failed_starts()
    assert sum(failed.values()) == 1
    group = next(iter(failed))[1]
    assert stopped_total(running.registry, **labels, cause="image_pull", started="false") == 1
    assert stopped_total(running.registry, account="") == 0
    assert running.value(
        "ecswatch_tasks_pending_to_stopped_total",
        **labels, group=group, stop_code=next(iter(failed))[2],
    ) == 1  # fmt: skip


def test_a_stop_the_command_applied_is_paid_by_the_next_daemon_pass_once(
    env: Stack, start_daemon: Callable[..., Running]
) -> None:
    """`reconcile --apply` exports nothing; the daemon's pass pays it; the late event does not."""
    ecs, arns = ecs_with_tasks(env, 1)
    ecs.stop_task(cluster="prod", task=arns[0], reason=PULL)
    assert main(["reconcile", "--apply"]) == 0
    item = env.task_items()[arns[0]]
    assert item[OWED_FROM] == ""
    running = start_daemon(reconcile=FAST)
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="success") >= 2)
    assert OWED_FROM not in env.task_items()[arns[0]]
    assert stopped_total(running.registry, account=ACCOUNT, region=REGION, cause="image_pull") == 1
    late = task_event(arns[0], int(item["version"]), "STOPPED", stoppedReason=PULL)
    late["detail"]["clusterArn"] = OWN_PROD
    env.send_events([late])
    wait_for(lambda: running.events("duplicate") == 1)
    assert stopped_total(running.registry) == 1
    assert sum(running.failed_starts().values()) == 1


def test_a_stop_the_command_applied_is_counted_once_when_its_event_arrives(
    env: Stack, start_daemon: Callable[..., Running]
) -> None:
    """With no reconciliation in the daemon, the late real event pays the owed count; copies
    of it do not."""
    ecs, arns = ecs_with_tasks(env, 1)
    ecs.stop_task(cluster="prod", task=arns[0], reason=PULL)
    assert main(["reconcile", "--apply"]) == 0
    version = int(env.task_items()[arns[0]]["version"])
    running = start_daemon()
    late = task_event(arns[0], version, "STOPPED", stoppedReason=PULL)
    env.send_events([late, late, late])
    wait_for(lambda: running.events("duplicate") == 3)
    assert stopped_total(running.registry, account=ACCOUNT, region=REGION, cause="image_pull") == 1
    assert sum(running.failed_starts().values()) == 1
    assert Resource.TASK.key in env.task_items()[arns[0]]


def test_a_pay_between_the_commands_read_and_write_is_never_owed_again(stack: Stack) -> None:
    """The command writes only on the item as it read it: a daemon paying the owed start in
    between makes it read again, so the phases it paid are not owed (and counted) twice."""
    command, daemon, _ = stores(stack)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    started = {**TIMES, "startedAt": "2026-11-20T10:00:10Z"}
    running, stopping = event(2, "RUNNING", **started), event(3, "STOPPED", **started)
    write(command, running)  # owes the start phases, from no item
    read = command._read
    reads = []

    def read_then_race(e: Event) -> Any:
        reads.append(read(e))
        if len(reads) == 1:  # a daemon meets the owed RUNNING version right after our read
            assert counted(metrics, daemon, running) is Outcome.DUPLICATE
        return reads[-1]

    command._read = read_then_race  # type: ignore[method-assign]
    assert write(command, stopping).outcome is Outcome.APPLIED
    assert len(reads) == 2
    assert counted(metrics, daemon, stopping) is Outcome.DUPLICATE  # pays the stop only
    phases = {"account": ACCOUNT, "region": REGION, "cluster": "prod", "phase": "pull"}
    assert registry.get_sample_value("ecswatch_task_start_phase_seconds_count", phases) == 1
    assert stopped_total(registry) == 1


def test_a_late_copy_of_an_owed_version_never_undoes_a_reconciliation_mark(stack: Stack) -> None:
    """The command wrote RUNNING with its start owed; a pass then marked the task STOPPED (ECS
    forgot it). A late copy of that RUNNING version (a DLQ redrive) must not re-put it over the
    mark; the owed start is paid once by the real STOPPED event, with the death."""
    command, daemon, _ = stores(stack)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    started = {**TIMES, "startedAt": "2026-11-20T10:00:10Z"}
    running = event(4, "RUNNING", **started)
    write(command, running)
    mark = Pass(None, stack.dynamodb, daemon, stack.config, daemon._retrier, apply=True)  # type: ignore[arg-type]
    mark._mark(TASKS, {"taskArn": ARN, "version": "4", "lastStatus": "RUNNING"}, OWN_PROD)
    assert counted(metrics, daemon, running) is Outcome.DUPLICATE
    item = stack.task_items()[ARN]
    assert (item["lastStatus"], item["reconciledFrom"]) == ("STOPPED", "RUNNING")
    assert "expiresAt" in item
    stopped = {**started, "stoppedAt": "2026-11-20T10:05:10Z", "stopCode": "UserInitiated"}
    assert counted(metrics, daemon, event(5, "STOPPED", **stopped)) is Outcome.APPLIED
    assert stopped_total(registry, cause="user", started="true") == 1
    phases = {"account": ACCOUNT, "region": REGION, "cluster": "prod", "phase": "start"}
    assert registry.get_sample_value("ecswatch_task_start_phase_seconds_count", phases) == 1


def test_daemons_racing_to_pay_one_owed_stop_count_it_once(stack: Stack) -> None:
    """Eight daemons at once — six with the owed version's copy, two with the next version —
    over one item the command left owing its stop: exactly one of them counts the death
    (PutItem conditions are atomic per item, on moto too)."""
    command = stores(stack)[0]
    stop = event(2, "STOPPED", stopCode="TaskFailedToStart", stoppedReason=PULL)
    later = event(3, "STOPPED", stopCode="TaskFailedToStart", stoppedReason=PULL)
    daemons = [stores(stack)[1] for _ in range(4)] + [stores(stack)[2] for _ in range(4)]
    for attempt in range(3):
        stack.dynamodb.delete_item(
            TableName=stack.config.dynamodb.task_table, Key={"taskArn": {"S": ARN}}
        )
        assert write(command, stop).outcome is Outcome.APPLIED
        counts = race_all([(d, later if i < 2 else stop) for i, d in enumerate(daemons)])
        paid = [c for c in counts if c is not None and c.status != "STOPPED"]
        assert paid == [Before()], attempt  # the command wrote it over nothing: owed from none
        assert OWED_FROM not in stack.task_items()[ARN]


def race_all(writes: list[tuple[Store, Event]]) -> list[Before | None]:
    """Each (store, event) written on its own thread, all released at once: what each counts."""
    barrier = threading.Barrier(len(writes))
    counts: list[Before | None] = []

    def race(store: Store, e: Event) -> None:
        barrier.wait()
        counts.append(write(store, e).count_from)

    threads = [threading.Thread(target=race, args=pair) for pair in writes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts
