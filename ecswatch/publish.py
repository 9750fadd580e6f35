"""Publishing simulated ECS events: through EventBridge (PutEvents) or straight to SQS."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

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
