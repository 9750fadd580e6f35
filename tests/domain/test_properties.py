"""Property: whatever the duplication and order, final state and PENDING→STOPPED are exact.

The processor's real logic runs over an in-memory table that honours the same condition as
DynamoDB (`attribute_not_exists(key) OR version < :v`, atomically); the emulator variant in
tests/integration/test_properties_emulator.py runs the same property over HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from hypothesis import given, settings
from prometheus_client import CollectorRegistry

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.daemon.state.store import Outcome, WriteResult, classify_conflict
from ecswatch.domain.deaths import Before, before_of, needs_before
from ecswatch.domain.events import Event
from tests.strategies import Scenario, scenarios


class ConditionalTable:
    """DynamoDB's conditional PutItem semantics for one table, in memory."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def apply(self, event: Event, item: Mapping[str, Any]) -> WriteResult:
        stored = self.items.get(event.arn)
        if stored is None or stored["version"] < event.version:
            self.items[event.arn] = dict(item)
            before = (
                before_of(stored.get("lastStatus"), bool(stored.get("startedAt")))
                if stored
                else Before()
            )
            return WriteResult(
                Outcome.APPLIED,
                before.status,
                stored["version"] if stored else None,
                before if needs_before(event) else None,
            )
        outcome = classify_conflict(stored["version"], event.version)
        return WriteResult(outcome, stored.get("lastStatus"), stored["version"])


class NoQueue:
    dead_letter_queue_url = ""


def counted(registry: CollectorRegistry, name: str, *labels: str) -> Counter[Any]:
    """A counter's samples summed by `labels` (one label: its value, else a tuple)."""
    found: Counter[Any] = Counter()
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == name:
                key = tuple(sample.labels[label] for label in labels)
                found[key if len(key) > 1 else key[0]] += int(sample.value)
    return found


def failed_starts(registry: CollectorRegistry) -> Counter[str]:
    return counted(registry, "ecswatch_tasks_pending_to_stopped_total", "group")


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_any_order_and_duplication_gives_max_version_and_exact_count(scenario: Scenario) -> None:
    table, registry = ConditionalTable(), CollectorRegistry()
    processor = Processor(table, NoQueue(), Metrics(registry))  # type: ignore[arg-type]
    for i, body in enumerate(scenario.deliveries):
        assert processor.handle(Message(f"m{i}", f"r{i}", body)).deletes
    assert {arn: item["version"] for arn, item in table.items.items()} == scenario.final
    assert failed_starts(registry) == scenario.failed_starts
    assert counted(registry, "ecswatch_tasks_stopped_total", "group", "started") == (
        scenario.stopped
    )
