"""How the simulator publishes: duplicates keep their event id, as ECS's do."""

from __future__ import annotations

import collections
from collections.abc import Sequence
from typing import Any

from ecswatch.dev.publish import ID_GUARDED, EventBridgeRoute
from ecswatch.dev.simulate import generate


def test_eventbridge_route_sends_first_copies_to_the_bus_and_what_keeps_its_id_to_sqs() -> None:
    """A versioned event's first copy goes by PutEvents; redeliveries, service events to SQS."""
    stream = generate(tasks=8, container_instances=1, copies=2, seed=3, with_service_events=True)
    bus: list[dict[str, Any]] = []
    queue: list[dict[str, Any]] = []

    def recorder(into: list[dict[str, Any]]) -> Any:
        def publish(batch: Sequence[dict[str, Any]]) -> int:
            into.extend(batch)
            return 0

        return publish

    route = EventBridgeRoute(recorder(bus), recorder(queue))
    for start in range(0, len(stream.envelopes), 10):
        assert route(stream.envelopes[start : start + 10]) == 0

    assert len(bus) + len(queue) == len(stream.envelopes)
    assert not any(e["detail-type"] in ID_GUARDED for e in bus)
    assert len({e["id"] for e in bus}) == len(bus)  # PutEvents would re-id a second copy
    copies = collections.Counter(e["id"] for e in queue if e["detail-type"] in ID_GUARDED)
    assert set(copies.values()) == {2}  # both copies of a service event share its id
    assert len(copies) == sum(stream.truth.service_events.values()) + sum(
        stream.truth.deployments.values()
    )
    versioned = stream.truth.distinct_events - len(copies)
    assert len(bus) == versioned  # one copy each through EventBridge, the other to SQS
