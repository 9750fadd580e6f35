"""Publishing simulated ECS events: through EventBridge (PutEvents) or straight to SQS."""

from __future__ import annotations

import collections
import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ecswatch.dev.simulate import generate
from ecswatch.domain.events import DEPLOYMENT_STATE_CHANGE, SERVICE_ACTION

BATCH = 10  # PutEvents and SendMessageBatch take at most ten entries
# Service events carry no detail.version: the daemon tells their duplicates by event id.
ID_GUARDED = frozenset({SERVICE_ACTION, DEPLOYMENT_STATE_CHANGE})

Publish = Callable[[Sequence[dict[str, Any]]], int]


def put_events(events: Any, envelopes: Sequence[dict[str, Any]], bus: str = "default") -> int:
    """PutEvents as ECS would emit them; returns how many entries EventBridge refused.

    Real EventBridge refuses `aws.*` sources from callers (NotAuthorizedForSourceException):
    against AWS, use `send_messages` instead. Emulators and LocalStack accept them.
    """
    failed = 0
    for start in range(0, len(envelopes), BATCH):
        entries = [
            {
                "Source": e["source"],
                "DetailType": e["detail-type"],
                "Detail": json.dumps(e["detail"]),
                "Resources": e.get("resources", []),
                "Time": e["time"],
                "EventBusName": bus,
            }
            for e in envelopes[start : start + BATCH]
        ]
        failed += int(events.put_events(Entries=entries).get("FailedEntryCount", 0))
    return failed


def send_messages(sqs: Any, queue_url: str, bodies: Sequence[str]) -> int:
    """SendMessageBatch of raw bodies; returns how many SQS refused."""
    failed = 0
    for start in range(0, len(bodies), BATCH):
        entries = [
            {"Id": str(i), "MessageBody": body}
            for i, body in enumerate(bodies[start : start + BATCH])
        ]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        failed += len(response.get("Failed", []))
    return failed


class EventBridgeRoute:
    """Publishes a stream as ECS and EventBridge deliver it: duplicates keep their event id.

    PutEvents gives every entry a fresh id, so a copy published twice would be two events, not
    one event delivered twice. So the first copy of a task or container-instance event goes
    through EventBridge, and what must keep its id goes straight to SQS as EventBridge would
    have delivered it: every redelivery, and every copy of a service event (those are
    de-duplicated by id; tasks and instances by `detail.version`, whatever their id).
    """

    def __init__(self, put: Publish, send: Publish, *, memory: int = 100_000) -> None:
        self._put = put
        self._send = send
        # The copies of one event lie within one simulated round: a bounded memory suffices.
        self._seen: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._memory = memory

    def split(
        self, envelopes: Sequence[dict[str, Any]]
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(through EventBridge, straight to SQS), remembering which ids were sent."""
        bus: list[dict[str, Any]] = []
        queue: list[dict[str, Any]] = []
        for envelope in envelopes:
            first = envelope["id"] not in self._seen
            self._seen[envelope["id"]] = None
            if len(self._seen) > self._memory:
                self._seen.popitem(last=False)
            by_id = envelope["detail-type"] in ID_GUARDED
            (bus if first and not by_id else queue).append(envelope)
        return bus, queue

    def __call__(self, envelopes: Sequence[dict[str, Any]]) -> int:
        bus, queue = self.split(envelopes)
        return (self._put(bus) if bus else 0) + (self._send(queue) if queue else 0)


def simulate(
    *,
    publish: Callable[[Sequence[dict[str, Any]]], int],
    rate: float,
    total: int,
    seed: int,
    stop: threading.Event,
    report: Callable[[int, int], None] = lambda published, refused: None,
) -> tuple[int, int]:
    """Publish simulated ECS traffic at about `rate` events/s until `total` (0: forever) or stop.

    Returns (published, refused). Each round is a fresh, shuffled, duplicated stream of a few
    services' task lifecycles, some failing to start, so the metrics keep moving.
    """
    published = refused = 0
    round_number = 0
    started = time.monotonic()
    while not stop.is_set() and (total == 0 or published < total):
        stream = generate(
            tasks=8,
            container_instances=1,
            copies=2,
            seed=seed + round_number,
            with_service_events=True,
        )
        round_number += 1
        for start in range(0, len(stream.envelopes), BATCH):
            if stop.is_set() or (total and published >= total):
                break
            batch = stream.envelopes[start : start + BATCH]
            if total:
                batch = batch[: total - published]
            refused += publish(batch)
            published += len(batch)
            # Pace: sleep until the time this many events should have taken at `rate`.
            stop.wait(max(0.0, started + published / rate - time.monotonic()))
        report(published, refused)
    return published, refused
