"""/metrics' text is exactly what prometheus_client's generate_latest writes, for less CPU."""

from __future__ import annotations

import json

from prometheus_client import CollectorRegistry, Counter, Info, generate_latest

from ecswatch.daemon.expose.exposition import text
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.expose.service_gauges import ServiceStateCollector
from ecswatch.dev.simulate import DEFAULT_SERVICES, generate, service_events
from ecswatch.domain.deaths import NOTHING
from ecswatch.domain.events import Event, parse_message
from ecswatch.domain.services import ServiceEvent, ServiceState
from tests.integration.test_service_health import T0


class Stored:
    def scan(self) -> dict[str, ServiceState]:
        return {}


def daemon_registry() -> CollectorRegistry:
    """The daemon's instruments after a stream of task and service events, and odd labels."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, tables=("ECSTaskState",))
    gauges = ServiceStateCollector(Stored(), 0)
    registry.register(gauges)
    envelopes = [json.loads(body) for body in generate(tasks=30, container_instances=2).bodies()]
    for envelope in envelopes + service_events(DEFAULT_SERVICES, T0):
        event = parse_message(json.dumps(envelope))
        if isinstance(event, Event):
            metrics.tasks.count_task(event, NOTHING)
        elif isinstance(event, ServiceEvent):
            gauges.applied(event)
            metrics.tasks.count_deployment(event)
    metrics.observe_write("ECSTaskState", 0.0123)
    odd = Counter("ecswatch_odd", "Help with a \\ and a\nnewline.", ["v"], registry=registry)
    for value in ('quote "q"', "back\\slash", "new\nline", "ünïcode", ""):
        odd.labels(v=value).inc(2.5)
    Info("ecswatch_odd_info", "An info.", registry=registry).info({"a": "b"})
    return registry


def test_the_fast_text_format_is_byte_for_byte_prometheus_clients() -> None:
    """Every family kind, escapes, +Inf buckets, _created moved after its family: same bytes."""
    registry = daemon_registry()
    assert text(registry.collect()) == generate_latest(registry)
    assert b'le="+Inf"' in generate_latest(registry)
