"""Worker-pool decisions without a network: heartbeat timing, delete batching, backoff,
release on stop, settling each message once."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from prometheus_client import CollectorRegistry

from ecswatch.daemon.aws.errors import is_transient
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.deleter import Deleter
from ecswatch.daemon.pipeline.fate import Fate
from ecswatch.daemon.pipeline.fetcher import (
    MAX_ERROR_BACKOFF_SECONDS,
    error_backoff,
    fetcher_threads,
)
from ecswatch.daemon.pipeline.inflight import InFlight
from ecswatch.daemon.pipeline.pause import Pause
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.daemon.pipeline.worker import WorkerPool


class FakeQueue:
    """Records what the pool asks of SQS; stand-in for pipeline.queue.Queue."""

    def __init__(self, batches: list[list[Message]]) -> None:
        self.batches = batches
        self.deleted: list[str] = []
        self.visibility: list[tuple[str, int]] = []
        self.dead_letter_queue_url = ""

    def receive(self, **_: Any) -> list[Message]:
        return self.batches.pop(0) if self.batches else []

    def delete(self, messages: Sequence[Message]) -> list[Message]:
        self.deleted += [m.message_id for m in messages]
        return []

    def change_visibility(self, messages: Sequence[Message], seconds: int) -> list[Message]:
        self.visibility += [(m.message_id, seconds) for m in messages]
        return []

    def set_visibility(
        self, messages: Sequence[Message], seconds: int
    ) -> tuple[list[Message], list[Message]]:
        return [], self.change_visibility(messages, seconds)


def messages(n: int) -> list[Message]:
    return [Message(f"m{i}", f"rh{i}", "{}") for i in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def inflight(queue: FakeQueue, clock: Clock, visibility: int = 60) -> InFlight:
    return InFlight(
        queue,  # type: ignore[arg-type]
        Metrics(CollectorRegistry()),
        visibility_timeout=visibility,
        clock=clock,
    )


def test_heartbeat_extends_only_messages_held_for_a_third_of_their_visibility() -> None:
    queue, clock = FakeQueue([]), Clock()
    owner = inflight(queue, clock, 60)
    old, new = messages(2)
    owner.received([old])
    clock.now += 10
    owner.received([new])
    owner.beat()
    assert queue.visibility == []
    clock.now += 10  # old held 20 s = a third of 60
    owner.beat()
    assert queue.visibility == [("m0", 60)]
    clock.now += 5  # old was just extended; new held 15 s
    owner.beat()
    assert queue.visibility == [("m0", 60)]
    assert owner.interval == 10  # ticks at a sixth: extended with >= 2/3 of it left


def test_heartbeat_forgets_settled_messages_but_holds_those_being_deleted() -> None:
    queue, clock = FakeQueue([]), Clock()
    owner = inflight(queue, clock, 9)
    batch = messages(4)
    owner.received(batch)
    owner.keep(batch[0])
    owner.release([batch[1]])
    owner.delete(batch[2])  # waits for its batch: still invisible meanwhile
    clock.now += 3
    assert sorted(m.message_id for m in owner.due()) == ["m2", "m3"]


def test_a_message_is_settled_only_once() -> None:
    queue, clock = FakeQueue([]), Clock()
    owner = inflight(queue, clock)
    [message] = messages(1)
    owner.received([message])
    owner.release([message])
    owner.delete(message)
    owner.keep(message)
    owner.release([message])
    assert queue.visibility == [("m0", 0)]
    assert owner.held() == 0
    assert owner.close(timeout=1)
    assert queue.deleted == []


def test_error_backoff_grows_with_jitter_and_is_capped() -> None:
    assert error_backoff(1, rng=lambda: 1.0) == 1.0
    assert error_backoff(3, rng=lambda: 1.0) == 4.0
    assert error_backoff(50, rng=lambda: 1.0) == MAX_ERROR_BACKOFF_SECONDS
    assert error_backoff(50, rng=lambda: 0.0) == 0.0


def pool_for(
    queue: FakeQueue,
    processor: Any,
    *,
    count: int,
    metrics: Metrics | None = None,
    pause: Pause | None = None,
) -> WorkerPool:
    """A pool on fake SQS: no long poll, ten per receive, 60 s visibility."""
    return WorkerPool(
        queue,  # type: ignore[arg-type]
        processor,
        metrics or Metrics(CollectorRegistry()),
        count=count,
        wait_time_seconds=0,
        max_messages=10,
        visibility_timeout=60,
        abort=threading.Event(),
        pause=pause,
    )


class StopAfter:
    """A processor that asks the pool to stop after handling `n` messages."""

    def __init__(self, pool_ref: list[WorkerPool], n: int) -> None:
        self.pool_ref, self.n, self.handled = pool_ref, n, 0

    def handle(self, message: Message) -> Fate:
        self.handled += 1
        if self.handled == self.n:
            self.pool_ref[0].stopping.set()
        return fate.DELETE


def test_stopping_mid_batch_deletes_the_finished_and_releases_the_prefetched() -> None:
    queue = FakeQueue([messages(5)])
    ref: list[WorkerPool] = []
    processor = StopAfter(ref, 2)
    metrics = Metrics(CollectorRegistry())
    pool = pool_for(queue, processor, count=1, metrics=metrics)
    ref.append(pool)
    pool.start()
    deadline = time.monotonic() + 10
    while not pool.stopping.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pool.shutdown(time.monotonic() + 5)
    assert processor.handled == 2
    assert queue.deleted == ["m0", "m1"]
    assert queue.visibility == [("m2", 0), ("m3", 0), ("m4", 0)]
    assert metrics.registry.get_sample_value("ecswatch_messages_in_flight") == 0
    assert metrics.registry.get_sample_value("ecswatch_messages_received_total") == 5
    assert pool.inflight.due() == []


class LongPolling(FakeQueue):
    """Its first receive returns the batch; every later one is a long poll that stays open
    (until the test ends), as SQS keeps it open for the wait time after the caller left."""

    def __init__(self, batches: list[list[Message]]) -> None:
        super().__init__(batches)
        self.open = threading.Event()

    def receive(self, **_: Any) -> list[Message]:
        if self.batches:
            return self.batches.pop(0)
        self.open.wait(30)
        return []


def test_stopping_during_a_long_poll_gives_back_the_prefetched_after_that_poll_ends() -> None:
    """wait_time_seconds 20, a poll of ours open at the stop: the messages given back stay
    invisible until that poll has ended on SQS's side, so it does not swallow them."""
    queue = LongPolling([messages(5)])
    ref: list[WorkerPool] = []
    processor = StopAfter(ref, 1)
    pool = WorkerPool(
        queue,  # type: ignore[arg-type]
        processor,
        Metrics(CollectorRegistry()),
        count=1,
        wait_time_seconds=20,
        max_messages=10,
        visibility_timeout=60,
        abort=threading.Event(),
    )
    ref.append(pool)
    pool.start()
    try:
        wait_until = time.monotonic() + 10
        while not pool.stopping.is_set() and time.monotonic() < wait_until:
            time.sleep(0.01)
        assert pool.shutdown(time.monotonic() + 5)
    finally:
        queue.open.set()
    released = dict(queue.visibility)
    assert sorted(released) == ["m1", "m2", "m3", "m4"]
    assert all(18 <= seconds <= 23 for seconds in released.values()), released


def deleter(queue: FakeQueue, clock: Clock) -> Deleter:
    return Deleter(
        queue.delete,
        lambda batch: None,
        linger=0.25,  # a binary fraction: 100.0 + 0.25 is exact
        clock=clock,
    )


def test_deleter_sends_full_batches_of_ten_at_once() -> None:
    clock = Clock()
    batcher = deleter(FakeQueue([]), clock)
    for message in messages(23):
        batcher.add(message)
    first, second = batcher.next_batch(), batcher.next_batch()
    assert [len(b or []) for b in (first, second)] == [10, 10]
    assert [m.message_id for m in first or []] == [f"m{i}" for i in range(10)]


def test_deleter_sends_a_short_batch_once_its_oldest_has_lingered() -> None:
    clock = Clock()
    batcher = deleter(FakeQueue([]), clock)
    for message in messages(3):
        batcher.add(message)
    clock.now += 0.25
    assert [m.message_id for m in batcher.next_batch() or []] == ["m0", "m1", "m2"]


def test_closing_deleter_flushes_everything_then_stops() -> None:
    queue, clock = FakeQueue([]), Clock()
    batcher = deleter(queue, clock)
    batcher.start()
    for message in messages(13):
        batcher.add(message)
    assert batcher.close(timeout=5)
    assert sorted(queue.deleted, key=lambda m: int(m[1:])) == [f"m{i}" for i in range(13)]
    assert not batcher.is_alive()


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutItem",
    )


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (client_error("ProvisionedThroughputExceededException", 400), True),
        (client_error("ThrottlingException", 400), True),
        (client_error("InternalServerError", 500), True),
        (client_error("Whatever", 503), True),
        (client_error("Whatever", 429), True),
        (client_error("SlowDown", 400), True),
        (client_error("PriorRequestNotComplete", 400), True),
        (client_error("LimitExceededException", 400), True),
        (client_error("NotImplemented", 501), False),
        (EndpointConnectionError(endpoint_url="http://x"), True),
        (ReadTimeoutError(endpoint_url="http://x"), True),
        (client_error("ConditionalCheckFailedException", 400), False),
        (client_error("ValidationException", 400), False),
        (client_error("AccessDeniedException", 400), False),
        (client_error("ResourceNotFoundException", 400), False),
        (ValueError("a bug"), False),
    ],
)
def test_only_throttling_5xx_and_connection_errors_are_transient(
    error: BaseException, transient: bool
) -> None:
    assert is_transient(error) is transient


class EndlessQueue(FakeQueue):
    """Always has a full batch; records how many messages each receive asked for."""

    def __init__(self) -> None:
        super().__init__([])
        self.asked: list[int] = []
        self.handed = 0

    def receive(self, **kwargs: Any) -> list[Message]:
        self.asked.append(kwargs["max_messages"])
        batch = [
            Message(f"m{self.handed + i}", f"rh{self.handed + i}", "{}")
            for i in range(kwargs["max_messages"])
        ]
        self.handed += len(batch)
        return batch


class Blocking:
    """A processor whose writes hang until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = 0

    def handle(self, message: Message) -> Fate:
        self.started += 1
        self.release.wait(10)
        return fate.DELETE


def test_prefetch_asks_for_whole_batches_and_stays_bounded_while_workers_are_stuck() -> None:
    queue, processor = EndlessQueue(), Blocking()
    pool = pool_for(queue, processor, count=2)
    pool.start()
    time.sleep(1.0)  # the fetcher had every chance to overfill the buffer
    assert processor.started == 2  # one message in hand per worker
    # prefetched: at most max(3 per worker, a batch) plus a batch per fetcher; plus those in hand
    assert queue.handed <= max(3 * 2, 10) + 10 * fetcher_threads(2) + 2
    assert set(queue.asked) == {10}
    processor.release.set()
    pool.stopping.set()
    assert pool.shutdown(time.monotonic() + 5)
    deleted, released = set(queue.deleted), {m for m, seconds in queue.visibility if seconds == 0}
    assert not deleted & released
    assert len(deleted) + len(released) == queue.handed  # every message settled, one way


class FailingOnce(FakeQueue):
    """The first receive raises (a bug, not an AWS error); then a batch arrives."""

    def receive(self, **kwargs: Any) -> list[Message]:
        if not hasattr(self, "failed"):
            self.failed = True
            raise RuntimeError("a bug in receive")
        return super().receive(**kwargs)


def test_a_fetcher_survives_an_unexpected_error_and_keeps_receiving() -> None:
    queue = FailingOnce([messages(3)])
    processor = StopAfter([], 99)
    pool = pool_for(queue, processor, count=1)
    pool.start()
    deadline = time.monotonic() + 10
    while processor.handled < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert processor.handled == 3
    assert pool.all_alive()
    assert pool.shutdown(time.monotonic() + 5)
    assert queue.deleted == ["m0", "m1", "m2"]


def test_heartbeat_extends_every_batch_of_many_held_messages() -> None:
    """25 held messages go out as three ChangeMessageVisibilityBatch calls, all extended."""
    queue, clock = FakeQueue([]), Clock()
    owner = inflight(queue, clock, 30)
    owner.received(messages(25))
    clock.now += 10
    owner.beat()
    assert sorted(m for m, _ in queue.visibility) == sorted(f"m{i}" for i in range(25))
    assert owner.due() == []
