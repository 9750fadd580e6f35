"""Publishing simulated ECS events: through EventBridge (PutEvents) or straight to SQS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ecswatch.dev.simulate import generate

BATCH = 10  # PutEvents and SendMessageBatch take at most ten entries


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
