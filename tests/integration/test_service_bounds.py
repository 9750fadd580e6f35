"""Service state stays bounded for years: a busy service's item, its markers, and expiry."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.expose.service_gauges import ServiceStateCollector
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.daemon.state.service_state import (
    ITEM_BOUND_BYTES,
    ServiceStore,
)
from ecswatch.daemon.state.store import Outcome
from ecswatch.dev.simulate import DEFAULT_SERVICES, service_event
from ecswatch.domain.expiry import DAY_SECONDS
from tests.conftest import Stack
from tests.domain.test_properties import NoQueue
from tests.integration.test_service_health import ORIGIN, T0, counted, event, service_reader

EVENTS = 1_000
NOW = T0.timestamp() + 3600


def store_for(stack: Stack, clock: list[float]) -> ServiceStore:
    client = make_client("dynamodb", stack.config.aws, max_pool_connections=2)
    return ServiceStore(
        client,
        stack.config.dynamodb.service_table,
        Retrier(WRITE, abort=threading.Event()),
        event_table=stack.config.dynamodb.service_event_table,
        clock=lambda: clock[0],
    )


def item_bytes(item: dict[str, Any]) -> int:
    """DynamoDB's item size: attribute names plus values (strings, numbers, booleans here)."""
    size = 0
    for name, value in item.items():
        (kind, inner), *_ = value.items()
        size += len(name.encode()) + (1 if kind == "BOOL" else len(str(inner).encode()))
    return size


@pytest.mark.slow
def test_thousands_of_events_for_one_service_keep_its_item_bounded_and_counts_exact(
    stack: Stack,
) -> None:
    """1,000 events of one autoscaled service, a fifth of them delivered again and many late:
    the stored item stays a fixed ~1 KB, each event counts once, the gauge is the latest."""
    web = DEFAULT_SERVICES[0]
    names = ["SERVICE_DESIRED_COUNT_UPDATED"] * 6 + [
        "SERVICE_STEADY_STATE",
        "SERVICE_TASK_START_IMPAIRED",
    ]
    rng = random.Random(14)
    distinct = []
    for i in range(EVENTS):
        when = T0 + timedelta(seconds=30 * i)
        if i % 10 == 9:
            distinct.append(service_event(web, "deployment", "SERVICE_DEPLOYMENT_COMPLETED", when))
        else:
            distinct.append(service_event(web, "action", rng.choice(names), when))
    distinct.append(
        service_event(web, "action", "SERVICE_TASK_START_IMPAIRED", T0 + timedelta(days=1))
    )
    # Delivery: each event late by up to 20 positions, and every fifth one again later.
    positions = list(enumerate(distinct)) + list(enumerate(distinct))[::5]
    deliveries = [e for _, e in sorted(positions, key=lambda p: p[0] + rng.uniform(0, 20))]
    store, registry = store_for(stack, [NOW]), CollectorRegistry()
    collector = ServiceStateCollector(service_reader(stack), refresh_seconds=0, clock=lambda: NOW)
    registry.register(collector)
    processor = Processor(
        None,  # type: ignore[arg-type]  (no task events here)
        NoQueue(),  # type: ignore[arg-type]
        Metrics(registry),
        services=store,
        service_state=collector,
    )
    # One writer: moto's conditional UpdateItem is not atomic under concurrency (EMULATOR.md);
    # the counting rests on the markers' PutItem, atomic per item on DynamoDB and moto alike.
    for i, envelope in enumerate(deliveries):
        assert processor.handle(Message(f"m{i}", f"r{i}", json.dumps(envelope)))

    assert counted(registry) == Counter(
        (e["resources"][0], e["detail"]["eventName"]) for e in distinct
    )
    outcomes = {
        outcome: registry.get_sample_value(
            "ecswatch_events_total", {"detail_type": "ECS Service Action", "outcome": outcome}
        )
        or 0
        for outcome in ("applied", "stale", "duplicate")
    }
    actions = sum(1 for e in distinct if e["detail-type"] == "ECS Service Action")
    assert outcomes["applied"] + outcomes["stale"] == actions
    assert outcomes["stale"] > 0  # late deliveries happened and were counted
    labels = {**ORIGIN, "cluster": "prod", "service": web.name}
    assert registry.get_sample_value("ecswatch_service_task_start_impaired", labels) == 1.0
    collector.refresh()
    assert registry.get_sample_value("ecswatch_service_task_start_impaired", labels) == 1.0

    item = stack.dynamodb.get_item(
        TableName=stack.config.dynamodb.service_table,
        Key={"serviceArn": {"S": distinct[0]["resources"][0]}},
    )["Item"]
    size = item_bytes(item)
    assert size <= ITEM_BOUND_BYTES
    assert size < 1024  # one write unit per UpdateItem
    assert "seenEventIds" not in item
    assert int(item["expiresAt"]["N"]) == NOW + store.idle_ttl_days * DAY_SECONDS
    markers = stack.dynamodb.scan(TableName=stack.config.dynamodb.service_event_table)["Items"]
    assert len(markers) == len(distinct)
    assert max(item_bytes(m) for m in markers) < 256
    # Each marker outlives its event's window: 7 days from the later of now and its time.
    times = {e["id"]: datetime.fromisoformat(e["time"].replace("Z", "+00:00")) for e in distinct}
    for marker in markers:
        then = times[marker["eventKey"]["S"].rsplit("#", 1)[1]].timestamp()
        assert int(marker["expiresAt"]["N"]) == int(max(NOW, then)) + 7 * DAY_SECONDS


def test_a_service_silent_past_its_expiry_leaves_the_gauges(stack: Stack) -> None:
    """A deleted service emits nothing more: once its expiresAt passes it is no longer exported,
    even before DynamoDB's TTL removes the item; a live one is kept alive by its events."""
    clock = [NOW]
    store = store_for(stack, clock)
    web, billing = DEFAULT_SERVICES[0], DEFAULT_SERVICES[2]
    impaired = event(service_event(billing, "action", "SERVICE_TASK_START_IMPAIRED", T0))
    assert store.apply(impaired) is Outcome.APPLIED
    assert store.apply(event(service_event(web, "action", "SERVICE_STEADY_STATE", T0))) is (
        Outcome.APPLIED
    )
    registry = CollectorRegistry()
    collector = ServiceStateCollector(
        service_reader(stack), refresh_seconds=0, clock=lambda: clock[0]
    )
    registry.register(collector)
    collector.refresh()
    gauge = "ecswatch_service_task_start_impaired"
    assert (
        registry.get_sample_value(gauge, {**ORIGIN, "cluster": "prod", "service": "billing"}) == 1.0
    )

    clock[0] = NOW + 29 * DAY_SECONDS  # web stays alive; billing was deleted, says nothing more
    later = T0 + timedelta(days=29)
    store.apply(event(service_event(web, "action", "SERVICE_STEADY_STATE", later)))
    clock[0] = NOW + 31 * DAY_SECONDS
    collector.refresh()
    assert (
        registry.get_sample_value(gauge, {**ORIGIN, "cluster": "prod", "service": "billing"})
        is None
    )
    assert registry.get_sample_value(gauge, {**ORIGIN, "cluster": "prod", "service": "web"}) == 0.0
