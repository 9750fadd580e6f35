"""The pause policy without a network: a systemic failure pauses its route only, one line per
transition, recovery only on evidence from that route, held messages never given back for the
world's fault, bounded holding."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.broken import MAX_PROBE_SECONDS, probe_delay
from ecswatch.daemon.pipeline.fate import Fate
from ecswatch.daemon.pipeline.pause import MAX_TRIPS_PER_MESSAGE, Pause, Verdict
from ecswatch.daemon.pipeline.queue import Message
from tests.daemon.pipeline.test_worker import Clock, FakeQueue, pool_for

TASK, INSTANCE = fate.TASK_ROUTE, fate.CONTAINER_INSTANCE_ROUTE
DENIED = "access_denied"


def denied(route: str) -> Fate:
    return fate.systemic(DENIED, route)


def msg(i: int, body: str = TASK) -> Message:
    return Message(f"m{i}", f"rh{i}", body)


def pause_for(registry: CollectorRegistry | None = None, **kwargs: Any) -> tuple[Pause, Clock]:
    clock = Clock()
    return Pause(
        Metrics(registry or CollectorRegistry()), clock=clock, rng=lambda: 1.0, **kwargs
    ), clock


def test_probe_delay_grows_and_is_capped() -> None:
    """Probes back off exponentially, never beyond the cap, never to nothing."""
    assert probe_delay(0, rng=lambda: 1.0) == 0.5
    assert probe_delay(3, rng=lambda: 1.0) == 4.0
    assert probe_delay(40, rng=lambda: 1.0) == MAX_PROBE_SECONDS
    assert probe_delay(40, rng=lambda: 0.0) == MAX_PROBE_SECONDS / 2


def test_one_warning_per_transition_and_the_gauge_follows() -> None:
    """Many failures in one outage give one 'paused' line and one 'resumed' line."""
    registry = CollectorRegistry()
    pause, clock = pause_for(registry)
    gauge = {"reason": DENIED}
    assert registry.get_sample_value("ecswatch_paused", gauge) == 0
    with capture_logs() as logs:
        assert pause.settled(msg(0), denied(TASK), probe=False, epoch=0).verdict is Verdict.HELD
        epoch = pause.epoch
        assert pause.settled(msg(1), denied(TASK), probe=False, epoch=epoch).verdict is Verdict.HELD
        assert registry.get_sample_value("ecswatch_paused", gauge) == 1
        assert pause.take_probe() is None  # the first probe waits its backoff
        clock.now += 0.5
        probe = pause.take_probe()
        assert probe == msg(0)
        assert pause.take_probe() is None  # one probe per route at a time
        pause.settled(probe, denied(TASK), probe=True, epoch=epoch)
        clock.now += 1.0
        probe = pause.take_probe()
        assert probe == msg(1)
        done = pause.settled(probe, fate.written(TASK), probe=True, epoch=epoch)
    assert done.verdict is Verdict.DELETE and done.requeue == [msg(0)]
    assert not pause.paused
    assert registry.get_sample_value("ecswatch_paused", gauge) == 0
    assert [(e["event"], e["log_level"], e.get("route")) for e in logs] == [
        ("consumer_paused", "warning", TASK),
        ("consumer_resumed", "warning", TASK),
    ]


def test_only_a_write_to_the_broken_route_ends_its_pause() -> None:
    """Ignored, expired, other tables' writes and the DLQ prove nothing about a broken table."""
    pause, _ = pause_for()
    pause.settled(msg(0), denied(INSTANCE), probe=False, epoch=0)
    epoch = pause.epoch
    for i, other in enumerate(
        [fate.DELETE, fate.written(TASK), fate.written(fate.SERVICE_ROUTE), fate.DEAD_LETTERED]
    ):
        assert pause.settled(msg(10 + i), other, probe=False, epoch=epoch).verdict is Verdict.DELETE
        assert pause.paused
    resumed = pause.settled(msg(20, INSTANCE), fate.written(INSTANCE), probe=False, epoch=epoch)
    assert not pause.paused
    assert resumed.requeue == [msg(0)]


def test_a_write_taken_before_the_route_broke_is_no_evidence() -> None:
    """A success that may have been written before the fault began does not resume."""
    pause, _ = pause_for()
    before = pause.epoch
    pause.settled(msg(0), denied(TASK), probe=False, epoch=before)
    pause.settled(msg(1), fate.written(TASK), probe=False, epoch=before)
    assert pause.paused


def test_a_straggler_failing_after_recovery_does_not_pause_again() -> None:
    """A write taken during the outage that fails after it ended goes back to the workers."""
    pause, _ = pause_for()
    pause.settled(msg(0), denied(TASK), probe=False, epoch=0)
    during = pause.epoch
    pause.settled(msg(1), fate.written(TASK), probe=False, epoch=during)
    with capture_logs() as logs:
        late = pause.settled(msg(2), denied(TASK), probe=False, epoch=during)
    assert late.verdict is Verdict.RETRY
    assert not pause.paused and logs == []


def test_a_message_that_alone_breaks_its_route_is_given_back_after_three_pauses() -> None:
    """Poison misread as systemic: others succeed on its route, so it trips, then is kept."""
    pause, _ = pause_for()
    poison = msg(0)
    given_back = []
    for i in range(MAX_TRIPS_PER_MESSAGE):
        assert pause.settled(poison, denied(TASK), probe=False, epoch=pause.epoch).verdict is (
            Verdict.HELD
        )
        other = pause.settled(msg(100 + i), fate.written(TASK), probe=False, epoch=pause.epoch)
        given_back.append(list(other.give_back))
    assert given_back == [[], [], [poison]]
    assert not pause.paused and not pause.watching


def test_held_messages_of_a_real_outage_never_trip() -> None:
    """When others fail on the route too, however many outages, nothing is given back."""
    pause, _ = pause_for()
    first = msg(0)
    for i in range(MAX_TRIPS_PER_MESSAGE * 2):
        epoch = pause.epoch
        assert pause.settled(first, denied(TASK), probe=False, epoch=epoch).verdict is Verdict.HELD
        pause.settled(msg(50 + i), denied(TASK), probe=False, epoch=epoch)
        pause.settled(msg(100 + i), fate.written(TASK), probe=False, epoch=pause.epoch)
        assert not pause.paused


def test_past_the_held_limit_receiving_stops_until_a_route_recovers() -> None:
    """Holding is bounded: at the limit no more receives, one line each way."""
    pause, _ = pause_for(limit=3)
    with capture_logs() as logs:
        for i in range(3):
            assert pause.receiving
            pause.settled(msg(i), denied(TASK), probe=False, epoch=0)
        assert not pause.receiving
        pause.settled(msg(9), fate.written(TASK), probe=False, epoch=pause.epoch)
    assert pause.receiving
    assert [e["event"] for e in logs] == [
        "consumer_paused",
        "receiving_paused",
        "consumer_resumed",
        "receiving_resumed",
    ]


class Routes:
    """A processor for which the routes named in `broken` fail with AccessDenied."""

    def __init__(self, *broken: str) -> None:
        self.broken = set(broken)
        self.calls: list[str] = []

    def handle(self, message: Message) -> Fate:
        self.calls.append(message.message_id)
        route = message.body
        return denied(route) if route in self.broken else fate.written(route)


class CountingQueue(FakeQueue):
    def __init__(self, batches: list[list[Message]]) -> None:
        super().__init__(batches)
        self.receives = 0

    def receive(self, **kwargs: Any) -> list[Message]:
        self.receives += 1
        if not self.batches:
            time.sleep(0.05)  # an empty long poll takes time
        return super().receive(**kwargs)


def wait_until(predicate: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert predicate()


def test_a_broken_route_holds_its_messages_while_the_others_flow() -> None:
    """Task table denied: instance events are written and deleted, task events held (neither
    released nor kept), and deleted once the table answers again."""
    tasks = [msg(i, TASK) for i in range(3)]
    instances = [msg(i, INSTANCE) for i in range(3, 6)]
    queue, processor = CountingQueue([tasks + instances]), Routes(TASK)
    registry = CollectorRegistry()
    pool = pool_for(queue, processor, count=2, metrics=Metrics(registry))
    pool.start()
    wait_until(lambda: sorted(queue.deleted) == ["m3", "m4", "m5"])
    assert pool.pause.paused and pool.pause.held() == 3
    receives = queue.receives
    wait_until(lambda: queue.receives > receives)  # still receiving: only a route is paused
    assert queue.visibility == []  # held: not released, not kept
    assert registry.get_sample_value("ecswatch_messages_in_flight") == 3
    processor.broken.clear()
    wait_until(lambda: len(queue.deleted) == 6)
    assert not pool.pause.paused
    assert pool.shutdown(time.monotonic() + 5)
    assert sorted(queue.deleted) == [f"m{i}" for i in range(6)]


def test_held_messages_are_given_back_at_shutdown() -> None:
    """A stop during a partial outage makes the held messages visible again at once."""
    queue = CountingQueue([[msg(0, TASK), msg(1, INSTANCE)]])
    pool = pool_for(queue, Routes(TASK), count=1)
    pool.start()
    wait_until(lambda: queue.deleted == ["m1"] and pool.pause.held() == 1)
    assert pool.shutdown(time.monotonic() + 5)
    assert ("m0", 0) in queue.visibility or ("m0", 3) in queue.visibility
    assert pool.inflight.held() == 0


def test_no_receive_once_the_held_limit_is_reached() -> None:
    """Holding is bounded: with the limit held for a broken route, ReceiveMessage stops."""
    queue = CountingQueue([[msg(0, TASK), msg(1, TASK)]])
    metrics = Metrics(CollectorRegistry())
    pool = pool_for(queue, Routes(TASK), count=1, metrics=metrics, pause=Pause(metrics, limit=2))
    pool.start()
    wait_until(lambda: pool.pause.held() == 2)
    receives = queue.receives
    time.sleep(0.5)  # fetchers had every chance to receive the next batch
    assert queue.receives == receives  # an empty receive takes 0.05 s: it would have gone on
    assert pool.shutdown(time.monotonic() + 5)


@pytest.mark.parametrize(
    "probe_fate",
    [
        fate.KEEP,  # its handling raised (a bug): the worker keeps it
        fate.DELETE,  # it expired while held
        fate.DEAD_LETTERED,  # DynamoDB now refuses the item itself: copied to the DLQ
        fate.systemic(DENIED, fate.DEAD_LETTER_ROUTE),  # ... and the DLQ copy failed
    ],
    ids=["raised", "expired", "dead_lettered", "dlq_failed"],
)
def test_a_probe_that_says_nothing_about_its_route_with_nothing_else_held_ends_the_pause(
    probe_fate: Fate,
) -> None:
    """A rarely written route whose only held message, probed, neither wrote nor failed there
    is not left paused (gauge 1, /readyz 503) until its next message, hours away."""
    registry = CollectorRegistry()
    pause, clock = pause_for(registry)
    pause.settled(msg(0, INSTANCE), denied(INSTANCE), probe=False, epoch=0)
    clock.now += 0.5
    probe = pause.take_probe()
    assert probe == msg(0, INSTANCE)
    with capture_logs() as logs:
        pause.settled(probe, probe_fate, probe=True, epoch=pause.epoch)
    # Only the DLQ route may be paused now (when the probe's copy there failed).
    assert pause.reason in (None, f"{DENIED} ({fate.DEAD_LETTER_ROUTE})")
    assert registry.get_sample_value("ecswatch_paused", {"reason": DENIED}) == pause.paused
    [resumed] = [e for e in logs if e["event"] == "consumer_resumed"]
    assert resumed["route"] == INSTANCE and resumed["held"] == 0
    # A later failure there pauses the route again, as a new outage.
    pause.settled(msg(1, INSTANCE), denied(INSTANCE), probe=False, epoch=0)
    assert INSTANCE in (pause.reason or "")


def test_a_probe_that_raises_with_others_held_is_followed_by_the_next_probe_at_once() -> None:
    """A probe without a verdict costs the route no backoff: the next held message goes now."""
    pause, clock = pause_for()
    for i in range(2):
        pause.settled(msg(i), denied(TASK), probe=False, epoch=0)
    clock.now += 0.5
    probe = pause.take_probe()
    assert probe is not None
    pause.settled(probe, fate.KEEP, probe=True, epoch=pause.epoch)
    assert pause.paused and pause.take_probe() == msg(1)


def test_a_probe_of_an_earlier_outage_does_not_delay_the_next_outages_first_probe() -> None:
    """A probe in hand while its route recovers and breaks again is no probe of the new outage:
    its failure holds it there, but neither backs off the new probes nor counts as one."""
    pause, clock = pause_for()
    pause.settled(msg(0), denied(TASK), probe=False, epoch=0)
    clock.now += 0.5
    old_probe = pause.take_probe()
    assert old_probe == msg(0)
    taken = pause.epoch  # the probe's write starts here
    pause.settled(msg(1), fate.written(TASK), probe=False, epoch=taken)  # recovered
    pause.settled(msg(2), denied(TASK), probe=False, epoch=pause.epoch)  # and broke again
    assert pause.settled(old_probe, denied(TASK), probe=True, epoch=taken).verdict is Verdict.HELD
    clock.now += 0.5  # the new outage's first probe is due
    assert pause.take_probe() == msg(2)


def test_pool_a_probe_that_raises_ends_the_pause_of_a_route_with_nothing_else_held() -> None:
    """Through the workers: the instance route's only message is denied, then its handling
    raises (a bug); it is given back to SQS and the route does not stay paused."""

    class DeniedThenBug(Routes):
        def handle(self, message: Message) -> Fate:
            if self.calls:
                self.calls.append(message.message_id)
                raise RuntimeError("a bug in the probe's handling")
            return super().handle(message)

    queue = CountingQueue([[msg(0, INSTANCE)]])
    pool = pool_for(queue, DeniedThenBug(INSTANCE), count=1)
    pool.start()
    wait_until(lambda: pool.pause.paused)
    wait_until(lambda: not pool.pause.paused, timeout=5)
    assert pool.pause.held() == 0 and pool.inflight.held() == 0  # kept: SQS redelivers it
    assert pool.shutdown(time.monotonic() + 5)


def test_a_success_taken_as_its_route_breaks_is_not_deleted_past_the_policy() -> None:
    """A worker may take a message once the break's epoch is out, before the break is done;
    if its write then succeeds, the hot path must not see `watching` False and skip the
    policy: that success is evidence and resumes the route."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    seen: list[tuple[int, bool]] = []  # (epoch, watching) as a worker read them mid-break

    class Gauge:
        def labels(self, **_: str) -> Gauge:
            return self

        def set(self, _: float) -> None:
            seen.append((pause.epoch, pause.watching))

    metrics.paused = Gauge()  # type: ignore[assignment]
    pause = Pause(metrics, clock=Clock(), rng=lambda: 1.0)
    pause.settled(msg(0), denied(TASK), probe=False, epoch=0)
    [(epoch, watching)] = seen
    outcome = fate.written(TASK)
    if outcome.deletes and not watching:  # the worker's hot path (worker._settle)
        pass  # deleted without the policy hearing of it
    else:
        pause.settled(msg(1), outcome, probe=False, epoch=epoch)
    assert not pause.paused
