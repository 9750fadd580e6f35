"""Pause and probe without a network: one transition per outage, no receive while paused, the
failed message held (not released, not kept) and retried as the probe."""

from __future__ import annotations

import threading
import time
from typing import Any

from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.fate import Fate
from ecswatch.daemon.pipeline.pause import MAX_PROBE_SECONDS, Pause, probe_delay
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.daemon.pipeline.worker import WorkerPool
from tests.daemon.pipeline.test_worker import Clock, FakeQueue, messages


def test_probe_delay_grows_and_is_capped() -> None:
    """Probes back off exponentially, never beyond the cap, never to nothing."""
    assert probe_delay(0, rng=lambda: 1.0) == 0.5
    assert probe_delay(3, rng=lambda: 1.0) == 4.0
    assert probe_delay(40, rng=lambda: 1.0) == MAX_PROBE_SECONDS
    assert probe_delay(40, rng=lambda: 0.0) == MAX_PROBE_SECONDS / 2


def test_one_warning_per_transition_and_the_gauge_follows() -> None:
    """Many failures in one outage give one 'paused' line and one 'resumed' line."""
    registry, clock = CollectorRegistry(), Clock()
    pause = Pause(Metrics(registry), clock=clock, rng=lambda: 1.0)
    gauge = {"reason": "access_denied"}
    assert registry.get_sample_value("ecswatch_paused", gauge) == 0
    with capture_logs() as logs:
        assert pause.settled(fate.systemic("access_denied"), probe=False)
        assert not pause.settled(fate.systemic("access_denied"), probe=False)
        assert registry.get_sample_value("ecswatch_paused", gauge) == 1
        assert not pause.take_probe()  # the first probe waits its backoff
        clock.now += 0.5
        assert pause.take_probe()
        assert not pause.take_probe()  # one probe at a time
        pause.settled(fate.systemic("access_denied"), probe=True)
        clock.now += 1.0
        assert pause.take_probe()
        pause.settled(fate.DELETE, probe=True)
    assert not pause.paused
    assert registry.get_sample_value("ecswatch_paused", gauge) == 0
    assert [(e["event"], e["log_level"]) for e in logs] == [
        ("consumer_paused", "warning"),
        ("consumer_resumed", "warning"),
    ]


class Outage:
    """A processor for which the world is broken until `heal` is set."""

    def __init__(self) -> None:
        self.heal = threading.Event()
        self.calls: list[str] = []

    def handle(self, message: Message) -> Fate:
        self.calls.append(message.message_id)
        return fate.DELETE if self.heal.is_set() else fate.systemic("access_denied")


class CountingQueue(FakeQueue):
    def __init__(self, batches: list[list[Message]]) -> None:
        super().__init__(batches)
        self.receives = 0

    def receive(self, **kwargs: Any) -> list[Message]:
        self.receives += 1
        return super().receive(**kwargs)


def test_a_systemic_failure_pauses_receiving_and_holds_the_message_until_a_probe_succeeds() -> None:
    """While paused: no ReceiveMessage, the message neither released nor kept; after: deleted."""
    queue, processor = CountingQueue([messages(1)]), Outage()
    registry = CollectorRegistry()
    pool = WorkerPool(
        queue,  # type: ignore[arg-type]
        processor,  # type: ignore[arg-type]
        Metrics(registry),
        count=2,
        wait_time_seconds=0,
        max_messages=10,
        visibility_timeout=60,
        abort=threading.Event(),
    )
    pool.start()
    deadline = time.monotonic() + 10
    while len(processor.calls) < 3 and time.monotonic() < deadline:  # tripped, then probed
        time.sleep(0.02)
    assert pool.pause.paused
    receives = queue.receives
    time.sleep(1.0)
    assert queue.receives == receives  # nothing received while paused
    assert queue.visibility == [] and queue.deleted == []  # held: not released, not deleted
    assert registry.get_sample_value("ecswatch_messages_in_flight") == 1
    processor.heal.set()
    while queue.deleted != ["m0"] and time.monotonic() < deadline + 10:
        time.sleep(0.02)
    assert queue.deleted == ["m0"]
    assert not pool.pause.paused
    assert set(processor.calls) == {"m0"}
    assert pool.shutdown(time.monotonic() + 5)
    assert queue.receives > receives  # receiving again after the pause
