"""Events older than the TTL window are refused: a replay after expiry counts nothing again."""

from __future__ import annotations

import json
from datetime import timedelta

from prometheus_client import CollectorRegistry

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.dev.simulate import DEFAULT_SERVICES, service_event
from ecswatch.domain.events import build_item, is_expired, parse_message
from ecswatch.domain.services import ServiceEvent
from tests.domain.test_events import NOW, parsed_event, task_body
from tests.domain.test_properties import ConditionalTable, NoQueue, failed_starts

TASK_TIME = NOW - timedelta(seconds=2)  # task_body's envelope time


def processor(table: ConditionalTable, metrics: Metrics, now: object) -> Processor:
    return Processor(
        table,  # type: ignore[arg-type]
        NoQueue(),  # type: ignore[arg-type]
        metrics,
        stopped_task_ttl_days=7,
        now=lambda: now,  # type: ignore[arg-type,return-value]
    )


def expired(registry: CollectorRegistry, detail_type: str) -> float | None:
    labels = {"detail_type": detail_type, "outcome": "expired"}
    return registry.get_sample_value("ecswatch_events_total", labels)


def test_events_older_than_the_window_are_expired_and_others_not() -> None:
    """The window is ttl days after the event's own time; 0 days turns the rule off."""
    event = parsed_event(task_body())
    assert not is_expired(event, TASK_TIME + timedelta(days=7), 7)
    assert is_expired(event, TASK_TIME + timedelta(days=7, seconds=1), 7)
    assert not is_expired(event, TASK_TIME + timedelta(days=700), 0)
    untimed = json.loads(task_body())
    del untimed["time"]
    assert not is_expired(parsed_event(json.dumps(untimed)), NOW + timedelta(days=99), 7)
    service = parse_message(json.dumps(service_event(DEFAULT_SERVICES[0], "action", "X", NOW)))
    assert isinstance(service, ServiceEvent)
    assert is_expired(service, NOW + timedelta(days=8), 7)


def test_a_failed_start_replayed_after_its_item_expired_is_not_counted_again() -> None:
    """A DLQ redrive 8 days later: the STOPPED item is gone (TTL), the replay is `expired`,
    deleted, and neither the count nor a resurrected RUNNING item follows."""
    table, registry = ConditionalTable(), CollectorRegistry()
    metrics = Metrics(registry)
    stopped = Message("m1", "r1", task_body(lastStatus="STOPPED", version=3))
    running = Message("m2", "r2", task_body(lastStatus="RUNNING", version=2))
    assert processor(table, metrics, NOW).handle(stopped) is fate.written(fate.TASK_ROUTE)
    assert failed_starts(registry)["service:web"] == 1
    table.items.clear()  # DynamoDB's TTL removed the STOPPED item after 7 days

    later = processor(table, metrics, NOW + timedelta(days=8))
    assert later.handle(stopped) is fate.DELETE
    assert later.handle(running) is fate.DELETE
    assert failed_starts(registry)["service:web"] == 1
    assert table.items == {}
    assert expired(registry, "ECS Task State Change") == 2


def test_an_item_from_a_future_timed_event_expires_after_that_time() -> None:
    """Clock skew cannot open a gap: expiry counts from the later of now and the event's time,
    so an item is never gone while is_expired still lets a copy of its event through."""
    future = json.loads(task_body(lastStatus="STOPPED"))
    future["time"] = (NOW + timedelta(days=2)).isoformat()
    item = build_item(parsed_event(json.dumps(future)), now=NOW, stopped_task_ttl_days=7)
    assert item["expiresAt"] == int((NOW + timedelta(days=9)).timestamp())
