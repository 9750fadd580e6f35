"""Messages in flight: kept invisible while they are worked (Heartbeat), then deleted in
batches of up to ten (Deleter), whichever worker finished them.

Safety: a message is handed to the Deleter only once its fate is durable (processor.py), and
it stays held by the Heartbeat until its DeleteMessageBatch returns, so a crash while it waits
for its batch, or a failed delete, only means a redelivery, which the conditional write
classifies as a duplicate. Batching deletes across workers is what makes them cost a tenth of
a round trip per message even when each receive brings back a single message.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from ecswatch.daemon.metrics import Metrics
from ecswatch.daemon.queue import BATCH, Message, Queue
from ecswatch.daemon.retry import is_aws_error

log = structlog.get_logger("ecswatch.daemon.inflight")


class Heartbeat:
    """Extends the visibility of held messages before it runs out."""

    def __init__(
        self,
        queue: Queue,
        visibility_timeout: int,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue = queue
        self._visibility = visibility_timeout
        self._clock = clock
        self._held: dict[str, tuple[Message, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ecswatch-heartbeat", daemon=True)

    @property
    def interval(self) -> float:
        return max(1.0, self._visibility / 4)

    def hold(self, messages: Sequence[Message]) -> None:
        now = self._clock()
        with self._lock:
            for m in messages:
                self._held[m.receipt_handle] = (m, now)

    def drop(self, messages: Sequence[Message]) -> None:
        with self._lock:
            for m in messages:
                self._held.pop(m.receipt_handle, None)

    def due(self) -> list[Message]:
        """Messages held for half their visibility since received or last extended."""
        now = self._clock()
        with self._lock:
            return [m for m, since in self._held.values() if now - since >= self._visibility / 2]

    def beat(self) -> None:
        due = self.due()
        if not due:
            return
        failed = {m.receipt_handle for m in self._queue.change_visibility(due, self._visibility)}
        now = self._clock()
        with self._lock:
            for m in due:
                if m.receipt_handle in self._held and m.receipt_handle not in failed:
                    self._held[m.receipt_handle] = (m, now)
        log.info("visibility_extended", messages=len(due) - len(failed), seconds=self._visibility)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:
                log.warning("heartbeat_failed", error=type(exc).__name__, detail=str(exc)[:300])


class Deleter:
    """Collects finished messages from every worker; deletes them ten at a time, or after
    `linger` seconds when fewer are waiting. `threads` batches may be in flight at once."""

    def __init__(
        self,
        queue: Queue,
        heartbeat: Heartbeat,
        metrics: Metrics,
        *,
        threads: int = 1,
        linger: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._queue, self._heartbeat, self._metrics = queue, heartbeat, metrics
        self._linger, self._clock = linger, clock
        self._pending: collections.deque[tuple[Message, float]] = collections.deque()
        self._ready = threading.Condition()
        self._closing = False
        self._threads = [
            threading.Thread(target=self._run, name=f"ecswatch-deleter-{i}", daemon=True)
            for i in range(threads)
        ]

    def add(self, message: Message) -> None:
        with self._ready:
            self._pending.append((message, self._clock()))
            if len(self._pending) >= BATCH or len(self._pending) == 1:
                self._ready.notify()

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def is_alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def close(self, timeout: float) -> bool:
        """Delete what is pending now, then stop; True when everything was flushed in time."""
        with self._ready:
            self._closing = True
            self._ready.notify_all()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def next_batch(self) -> list[Message] | None:
        """Up to ten messages once a batch is full or its oldest has lingered; None when closed
        and empty."""
        with self._ready:
            while True:
                if self._pending:
                    waited = self._clock() - self._pending[0][1]
                    if len(self._pending) >= BATCH or waited >= self._linger or self._closing:
                        count = min(BATCH, len(self._pending))
                        return [self._pending.popleft()[0] for _ in range(count)]
                    self._ready.wait(self._linger - waited)
                elif self._closing:
                    return None
                else:
                    self._ready.wait()

    def _run(self) -> None:
        while (batch := self.next_batch()) is not None:
            try:
                logged_failure("delete_failed", batch, lambda: self._queue.delete(batch))
            except Exception:
                log.exception("delete_error", messages=len(batch))
            finally:
                self._heartbeat.drop(batch)
                self._metrics.in_flight.dec(len(batch))


def logged_failure(
    event: str, batch: Sequence[Message], call: Callable[[], list[Message]]
) -> list[Message] | None:
    """`call()`, or None after logging `event` if AWS refused it (other errors propagate)."""
    try:
        return call()
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        log.warning(event, messages=len(batch), error=type(exc).__name__)
        return None
