"""The visibility heartbeat at SQS's edges: past the 12-hour cap each held message is asked
once and the refusal is one log line per batch, not a retry of every message every second."""

from __future__ import annotations

import itertools
import threading
from typing import Any

from botocore.exceptions import EndpointConnectionError
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from ecswatch.daemon.aws.retry import QUEUE_OP, Retrier
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.inflight import InFlight
from ecswatch.daemon.pipeline.queue import Queue
from tests.daemon.pipeline.test_worker import Clock, FakeQueue, messages

CAP_REFUSAL = {
    "SenderFault": True,
    "Code": "InvalidParameterValue",
    "Message": "Total VisibilityTimeout for the message is beyond the limit [43200 seconds]",
}


class PastTheCap:
    """An SQS client refusing every visibility change as SQS does past 12 hours."""

    def __init__(self) -> None:
        self.calls: list[int] = []  # entries per ChangeMessageVisibilityBatch call

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        entries = request["Entries"]
        self.calls.append(len(entries))
        return {"Successful": [], "Failed": [{"Id": e["Id"], **CAP_REFUSAL} for e in entries]}


def test_past_the_visibility_cap_each_message_is_asked_once_and_logged_once_per_batch() -> None:
    """25 held messages refused by SQS: 3 calls and 3 lines, then nothing more each second."""
    client, clock = PastTheCap(), Clock()
    queue = Queue(client, "https://queue", retrier=Retrier(QUEUE_OP, abort=threading.Event()))
    owner = InFlight(queue, Metrics(CollectorRegistry()), visibility_timeout=30, clock=clock)
    owner.received(messages(25))
    with capture_logs() as logs:
        clock.now += 10  # a third of the visibility: due
        owner.beat()
        for _ in range(20):  # the heartbeat ticks every second
            clock.now += 1
            owner.beat()
    assert client.calls == [10, 10, 5]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [(e["event"], e["messages"]) for e in warnings] == [
        ("sqs_batch_entries_failed", 10),
        ("sqs_batch_entries_failed", 10),
        ("sqs_batch_entries_failed", 5),
    ]
    assert owner.held() == 25  # still held: whoever holds them settles them as before


class FailingOnSqsSide(PastTheCap):
    """Every entry fails on SQS's side (SenderFault false) until `healed`."""

    healed = False

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        entries = request["Entries"]
        self.calls.append(len(entries))
        if self.healed:
            return {"Successful": [{"Id": e["Id"]} for e in entries], "Failed": []}
        failure = {"SenderFault": False, "Code": "InternalError", "Message": "try again"}
        return {"Successful": [], "Failed": [{"Id": e["Id"], **failure} for e in entries]}


def test_an_extension_that_failed_on_sqs_side_is_asked_again_at_the_next_tick() -> None:
    """SQS's own failures are not the cap: the held message is extended once SQS answers."""
    client, clock = FailingOnSqsSide(), Clock()
    queue = Queue(client, "https://queue", retrier=Retrier(QUEUE_OP, abort=threading.Event()))
    owner = InFlight(queue, Metrics(CollectorRegistry()), visibility_timeout=30, clock=clock)
    owner.received(messages(1))
    clock.now += 10
    owner.beat()  # three sends of the entry, all failed
    client.healed = True
    clock.now += 1
    owner.beat()
    assert client.calls == [1, 1, 1, 1]
    assert owner.due() == []  # extended: due again only a third of the visibility later


class Unanswering(FakeQueue):
    """Every visibility call fails whole, past its retries (an SQS brownout)."""

    def __init__(self) -> None:
        super().__init__([])
        self.calls = 0

    def set_visibility(self, messages: Any, seconds: int) -> Any:
        self.calls += 1
        raise EndpointConnectionError(endpoint_url="https://queue")


def test_a_heartbeat_whose_calls_all_fail_is_one_line_a_beat_not_one_per_batch() -> None:
    """An SQS brownout with many held (a paused route): each beat asks again for every due
    message, but says so in one WARNING line, not one per ten messages every second."""
    queue, clock = Unanswering(), Clock()
    owner = InFlight(
        queue,  # type: ignore[arg-type]
        Metrics(CollectorRegistry()),
        visibility_timeout=30,
        clock=clock,
    )
    owner.received(messages(45))
    with capture_logs() as logs:
        clock.now += 10
        for _ in range(3):
            clock.now += 1
            owner.beat()
    assert queue.calls == 15  # every due message asked again each beat
    failed = [e for e in logs if e["event"] == "heartbeat_failed"]
    assert [(e["calls"], e["messages"]) for e in failed] == [(5, 45)] * 3


class SlowToAnswer:
    """An SQS client whose ChangeMessageVisibilityBatch is applied at once but answered
    `seconds` later (a loaded SQS endpoint: the visibility runs from when SQS applied it)."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock, self.seconds = clock, seconds
        self.applied_at: list[float] = []

    def change_message_visibility_batch(self, **request: Any) -> dict[str, Any]:
        self.applied_at.append(self.clock.now)
        self.clock.now += self.seconds
        return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]], "Failed": []}


def test_a_slow_extension_counts_the_visibility_from_when_it_was_sent_not_answered() -> None:
    """Extensions answered 6 s after SQS applied them (visibility 9 s, a loaded endpoint): the
    next one is still applied before the previous one's visibility runs out."""
    clock = Clock()
    client = SlowToAnswer(clock, seconds=6.0)
    queue = Queue(client, "https://queue", retrier=Retrier(QUEUE_OP, abort=threading.Event()))
    owner = InFlight(queue, Metrics(CollectorRegistry()), visibility_timeout=9, clock=clock)
    owner.received(messages(1))
    for _ in range(60):  # the heartbeat's ticks, half a second apart
        clock.now += 0.5
        owner.beat()
    applied = [100.0, *client.applied_at]  # received at 100
    assert len(applied) >= 4
    assert all(later - earlier < 9 for earlier, later in itertools.pairwise(applied))
