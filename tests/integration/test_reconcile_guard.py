"""The reconciler never hurts the pipeline and never works beside another holder, on moto."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.reconcile.ecs import ECS_READ, EcsApi, RateLimiter, Stopping
from ecswatch.daemon.reconcile.lease import Lease
from ecswatch.daemon.reconcile.service_counts import ServiceCounts
from ecswatch.daemon.state.service_reads import ServiceReader
from tests.conftest import Running, Stack, wait_for
from tests.integration.test_reconcile import (
    OWN_PROD,
    ecs_client,
    ecs_with_tasks,
    put_task,
    task_arn,
)
from tests.integration.test_reconcile_expiry import exported, reconciler
from tests.integration.test_reconciler import FAST, lease_item

WEB = "arn:aws:ecs:us-east-1:123456789012:service/prod/web"


def throttle(stack: Stack, *operations: str, share: float = 1.0) -> None:
    stack.emulator.faults.operations = operations
    stack.emulator.faults.throttle_share = share


def test_a_pass_throttled_by_dynamodb_spends_its_own_retry_budget_not_the_pipelines(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Marks retried under throttling fail the pass; the consumer's budget stays whole."""
    ecs_with_tasks(stack, 0)
    for name in ("lost-1", "lost-2"):
        put_task(stack, task_arn(name), 3, "RUNNING")
    throttle(stack, "UpdateItem")
    running = start_daemon(reconcile=FAST)
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="failed") >= 2,
             timeout=60)  # fmt: skip
    assert stack.emulator.injector.injected["throttle"] >= 2 * WRITE.attempts - 2
    assert running.value("ecswatch_retry_budget_tokens", service="dynamodb") == 500


def test_stop_during_throttled_retries_releases_the_lease_within_the_shutdown_timeout(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """A pass sleeping between retries wakes at stop: the thread ends, the lease is free."""
    ecs_with_tasks(stack, 0)
    put_task(stack, task_arn("lost"), 3, "RUNNING")
    throttle(stack, "UpdateItem")
    running = start_daemon(reconcile=FAST, workers={"shutdown_timeout": 1.0})
    wait_for(lambda: stack.emulator.injector.injected["throttle"] >= 2)  # retrying a mark
    running.daemon.stop()  # the reconciler gets what the 1 s shutdown leaves: about 0.5 s
    assert lease_item(stack)["leaseOwner"] == ""
    assert running.value("ecswatch_reconcile_passes_total", result="aborted") == 1
    assert running.value("ecswatch_reconcile_passes_total", result="failed") == 0


def test_a_pass_longer_than_its_lease_keeps_it_and_no_other_replica_reconciles_meanwhile(
    stack: Stack,
) -> None:
    """At 0.5 ECS calls/s a pass takes several leases' time: renewed before every request,
    the lease never lapses, so a second replica trying all along never gets it."""
    ecs_with_tasks(stack, 0)
    leader = reconciler(stack, lease_seconds=4.0, max_api_calls_per_second=0.5)
    assert leader.lease.renew()  # the leader first
    results: list[str] = []
    passing = threading.Thread(target=lambda: results.append(leader.run_pass()))
    passing.start()
    contender = Lease(stack.dynamodb, stack.config.dynamodb.service_table, "b", 4.0)
    taken = []
    started = time.monotonic()
    while passing.is_alive():
        if contender.renew():
            taken.append(time.monotonic() - started)
            contender.release()
        time.sleep(0.2)
    passing.join()
    assert time.monotonic() - started > 2 * 4.0  # it did outlast the lease
    assert results == ["success"]
    assert taken == []


def test_throttled_scan_pages_are_retried_and_passes_succeed(stack: Stack) -> None:
    """A throttled Scan page (the vanish check, the services' check) is retried on its own."""
    ecs_with_tasks(stack, 1)
    put_task(stack, task_arn("lost"), 3, "RUNNING")
    throttle(stack, "Scan", share=0.3)
    passes = reconciler(stack)
    assert [passes.run_pass() for _ in range(3)] == ["success"] * 3
    assert stack.emulator.injector.injected["throttle"] > 0
    assert stack.task_items()[task_arn("lost")]["lastStatus"] == "STOPPED"


def counts_writer(stack: Stack) -> ServiceCounts:
    stop = threading.Event()
    api = EcsApi(ecs_client(stack), Retrier(ECS_READ, abort=stop), RateLimiter(50.0, stop))
    table = stack.config.dynamodb.service_table
    return ServiceCounts(api, stack.dynamodb, table, Retrier(WRITE, abort=stop),
                         idle_ttl_days=30, window_ttl_days=7)  # fmt: skip


def test_a_stale_holders_counts_never_replace_a_newer_holders(stack: Stack) -> None:
    """Counts carry the lease's fencing token: a replica that lost the lease mid-write can
    neither overwrite newer counts nor expire a service the new holder just counted."""
    ecs, _ = ecs_with_tasks(stack, 0)
    ecs.create_service(cluster="prod", serviceName="web", taskDefinition="web", desiredCount=3)
    reader = ServiceReader(stack.dynamodb, stack.config.dynamodb.service_table)
    newer, stale = counts_writer(stack), counts_writer(stack)
    assert newer.sync([OWN_PROD], token=2) == 1
    ecs.update_service(cluster="prod", service="web", desiredCount=5)
    with pytest.raises(Stopping):
        stale.sync([OWN_PROD], token=1)
    counts = exported(reader)[WEB].counts
    assert counts is not None and counts.desired == 3

    ecs.delete_service(cluster="prod", service="web", force=True)
    stale.sync([OWN_PROD], token=1)  # its forget is refused: not its to judge any more
    assert WEB in exported(reader)
    newer.sync([OWN_PROD], token=2)
    assert WEB not in exported(reader)
