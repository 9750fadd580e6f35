"""The per-service gauges at scale: other replicas' changes without rescans, stale counts, and
what a gone service leaves behind (nothing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

from prometheus_client import CollectorRegistry

from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.expose.service_gauges import ServiceStateCollector
from ecswatch.daemon.state.service_journal import SLOTS, ServiceJournal
from ecswatch.daemon.state.service_reads import ServiceReader
from ecswatch.dev.simulate import DEFAULT_SERVICES, service_arn, service_event
from ecswatch.domain.services import GaugeChange, ServiceState, merged
from tests.conftest import Stack, wait_for
from tests.integration.test_service_health import ORIGIN, T0, event, service_store

IMPAIRED = "ecswatch_service_task_start_impaired"
WEB = {**ORIGIN, "cluster": "prod", "service": "web"}


class CountingReader:
    """A ServiceReader that counts its full rescans."""

    def __init__(self, reader: ServiceReader) -> None:
        self.reader, self.scans = reader, 0

    def scan(self) -> dict[str, ServiceState]:
        self.scans += 1
        return self.reader.scan()


def dynamodb(stack: Stack) -> Any:
    return make_client("dynamodb", stack.config.aws, max_pool_connections=4)


def journal(stack: Stack, writer: str, bucket_seconds: float = 1.0) -> ServiceJournal:
    table = stack.config.dynamodb.service_table
    return ServiceJournal(dynamodb(stack), table, writer=writer, bucket_seconds=bucket_seconds)


def replica(stack: Stack, writer: str) -> tuple[ServiceStateCollector, CountingReader, Any]:
    """One replica's gauges: a journal of 1 s buckets, a rescan only every 100 s."""
    reader = CountingReader(ServiceReader(dynamodb(stack), stack.config.dynamodb.service_table))
    registry = CollectorRegistry()
    collector = ServiceStateCollector(reader, 10.0, journal=journal(stack, writer))
    registry.register(collector)
    return collector, reader, registry


def test_a_change_applied_by_one_replica_shows_on_another_without_a_rescan(stack: Stack) -> None:
    """Replica B said impaired; A applies SERVICE_STEADY_STATE: B shows 0 within seconds, from
    A's journal, having scanned the service table only once (at start)."""
    store = service_store(stack)
    web = DEFAULT_SERVICES[0]
    impaired = event(service_event(web, "action", "SERVICE_TASK_START_IMPAIRED", T0))
    steady = event(service_event(web, "action", "SERVICE_STEADY_STATE", T0 + timedelta(1)))
    a, a_reads, _ = replica(stack, "a")
    b, b_reads, b_registry = replica(stack, "b")
    store.apply(impaired)
    b.applied(impaired)
    for collector in (a, b):
        collector.start()
    try:
        store.apply(steady)
        a.applied(steady)
        wait_for(lambda: b_registry.get_sample_value(IMPAIRED, WEB) == 0.0, timeout=10)
        assert (a_reads.scans, b_reads.scans) == (1, 1)
    finally:
        a.stop()
        b.stop()


def test_a_late_or_repeated_journal_entry_never_undoes_a_newer_one(stack: Stack) -> None:
    """Two writers journal the same service in one bucket, the older change last: readers keep
    the newer; a slot reused for a later bucket holds none of the earlier bucket's entries."""
    arn = service_arn("prod", "web")
    clock = [1_000_000.0]
    one = ServiceJournal(dynamodb(stack), stack.config.dynamodb.service_table, writer="one",
                         bucket_seconds=10, clock=lambda: clock[0])  # fmt: skip
    two = ServiceJournal(dynamodb(stack), stack.config.dynamodb.service_table, writer="two",
                         bucket_seconds=10, clock=lambda: clock[0])  # fmt: skip
    newer = GaugeChange(arn, "prod", "web", "impairment", "2026-01-02T00:00:00.000Z#b", "0")
    older = GaugeChange(arn, "prod", "web", "impairment", "2026-01-01T00:00:00.000Z#a", "1")
    assert one.publish([newer]) and two.publish([older])
    read = one.read(one.bucket())
    assert sorted(c.key for c in read) == sorted([newer.key, older.key])
    for order in (read, read[::-1], [*read, *read]):
        state = reduce(merged, order, None)
        assert (state.impaired, state.impairment_key) == (False, newer.key)
    clock[0] += 10 * SLOTS  # the same slot, SLOTS buckets later
    assert one.read(one.bucket()) == []
    assert two.publish([older]) and one.read(one.bucket()) == [older]


def test_counts_older_than_three_reconcile_intervals_are_not_exported(stack: Stack) -> None:
    """A service's desired/running counts whose countsAt is older than the bound leave the
    gauges (frozen numbers must not drive ECSServiceBelowDesiredCount); fresh ones stay."""
    client, table = dynamodb(stack), stack.config.dynamodb.service_table
    now = datetime.now(UTC)
    for name, at in (("fresh", now - timedelta(minutes=5)), ("frozen", now - timedelta(hours=1))):
        client.put_item(TableName=table, Item={
            "serviceArn": {"S": service_arn("prod", name)},
            "clusterName": {"S": "prod"}, "serviceName": {"S": name},
            "desiredTasks": {"N": "3"}, "runningTasks": {"N": "1"}, "pendingTasks": {"N": "0"},
            "countsAt": {"S": at.isoformat(timespec="seconds")},
        })  # fmt: skip
    registry = CollectorRegistry()
    collector = ServiceStateCollector(ServiceReader(client, table), 0, counts_max_age=900)
    registry.register(collector)
    collector.refresh()
    desired = "ecswatch_service_desired_tasks"
    assert registry.get_sample_value(desired, {**ORIGIN, "cluster": "prod", "service": "fresh"})
    assert (
        registry.get_sample_value(desired, {**ORIGIN, "cluster": "prod", "service": "frozen"})
        is None
    )


def fill_every_per_service_instrument(metrics: Metrics, service: str) -> list[tuple[Any, dict]]:
    """One child per instrument labelled by service or group, for `service`."""
    made = []
    for metric in vars(metrics).values():
        names = getattr(metric, "_labelnames", ())
        if "cluster" not in names or not {"service", "group"} & set(names):
            continue
        labels = {n: "x" for n in names} | {**ORIGIN, "cluster": "prod"}
        labels["service" if "service" in names else "group"] = (
            service if "service" in names else f"service:{service}"
        )
        metric.labels(**labels)
        made.append((metric, labels))
    return made


def children(metric: Any) -> set[tuple[str, ...]]:
    return set(metric._metrics)


def test_a_gone_service_leaves_no_label_children_in_any_instrument(stack: Stack) -> None:
    """When a service's item expires, every per-service and per-group child of it goes from
    every instrument (counters, histograms, gauges); other services' stay."""
    clock = [datetime.now(UTC).timestamp()]
    store = service_store(stack)
    web, billing = DEFAULT_SERVICES[0], DEFAULT_SERVICES[2]
    for service in (web, billing):
        store.apply(event(service_event(service, "action", "SERVICE_STEADY_STATE", T0)))
    metrics = Metrics(CollectorRegistry())
    made = fill_every_per_service_instrument(metrics, "billing")
    kept = fill_every_per_service_instrument(metrics, "web")
    assert {m._name for m, _ in made} >= {
        "ecswatch_tasks_pending_to_stopped", "ecswatch_service_events", "ecswatch_deployments"
    }  # fmt: skip
    collector = ServiceStateCollector(
        ServiceReader(dynamodb(stack), stack.config.dynamodb.service_table), 0,
        forget=metrics.forget_services, clock=lambda: clock[0],
    )  # fmt: skip
    collector.refresh()
    assert all(tuple(labels.values()) in children(m) for m, labels in made)
    dynamodb(stack).update_item(
        TableName=stack.config.dynamodb.service_table,
        Key={"serviceArn": {"S": service_arn("prod", "billing")}},
        UpdateExpression="SET expiresAt = :now",
        ExpressionAttributeValues={":now": {"N": str(int(clock[0]))}},
    )
    clock[0] += 1
    collector.refresh()
    for metric, labels in made:
        assert tuple(labels.values()) not in children(metric), metric._name
    for metric, labels in kept:
        assert tuple(labels.values()) in children(metric), metric._name


def test_late_events_of_a_gone_service_are_forgotten_at_the_next_rescan(stack: Stack) -> None:
    """A replica that never exported a deleted service still drops the children a late event
    made, while the expired item waits for TTL."""
    web = DEFAULT_SERVICES[0]
    store = service_store(stack)
    store.apply(event(service_event(web, "action", "SERVICE_STEADY_STATE", T0)))
    dynamodb(stack).update_item(
        TableName=stack.config.dynamodb.service_table,
        Key={"serviceArn": {"S": service_arn("prod", "web")}},
        UpdateExpression="SET expiresAt = :now",
        ExpressionAttributeValues={":now": {"N": "1"}},
    )
    metrics = Metrics(CollectorRegistry())
    made = fill_every_per_service_instrument(metrics, "web")
    collector = ServiceStateCollector(
        ServiceReader(dynamodb(stack), stack.config.dynamodb.service_table), 0,
        forget=metrics.forget_services,
    )  # fmt: skip
    collector.refresh()
    assert not any(tuple(labels.values()) in children(m) for m, labels in made)
