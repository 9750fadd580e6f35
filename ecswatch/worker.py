"""The worker pool: N threads long-polling one queue, a visibility heartbeat, ordered shutdown.

Why this is safe under every interleaving: a message is deleted only after its fate is
durable (see processor.py), so a crash, a SIGKILL or an expired visibility can only cause a
redelivery, and a redelivery is classified duplicate/stale by the conditional write (store.py).
The heartbeat keeps a message invisible while a slow write retries, so another replica does
not pick it up meanwhile; when we stop, unstarted messages are made visible again at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from ecswatch.metrics import Metrics
from ecswatch.processor import Processor
from ecswatch.queue import Message, Queue
from ecswatch.retry import is_aws_error

log = structlog.get_logger("ecswatch.worker")

MAX_ERROR_BACKOFF_SECONDS = 30.0


def error_backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff for a failing poll loop: never spin, never stall long."""
    return rng() * min(MAX_ERROR_BACKOFF_SECONDS, 0.5 * 2.0 ** min(failures, 10))


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

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception as exc:
                log.warning("heartbeat_failed", error=type(exc).__name__, detail=str(exc)[:300])


class WorkerPool:
    def __init__(
        self,
        queue: Queue,
        processor: Processor,
        metrics: Metrics,
        *,
        count: int,
        wait_time_seconds: int,
        max_messages: int,
        visibility_timeout: int,
        abort: threading.Event,
    ) -> None:
        self._queue = queue
        self._processor = processor
        self._metrics = metrics
        self._wait = wait_time_seconds
        self._max = max_messages
        self._visibility = visibility_timeout
        self.heartbeat = Heartbeat(queue, visibility_timeout)
        self.stopping = threading.Event()  # stop receiving and starting messages
        self.abort = abort  # past the drain deadline: retries give up at once
        self._last_receive: float | None = None
        self._threads = [
            threading.Thread(target=self._run, name=f"ecswatch-worker-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        self.heartbeat.start()
        for thread in self._threads:
            thread.start()

    def all_alive(self) -> bool:
        return all(thread.is_alive() for thread in self._threads)

    def seconds_since_receive(self) -> float | None:
        last = self._last_receive
        return None if last is None else time.monotonic() - last

    def shutdown(self, timeout: float) -> bool:
        """Ordered stop under one deadline; True when every worker finished in time.

        1. stop receiving (workers finish the message in hand, release the rest of their batch);
        2. at 80% of the deadline, abort retries so a stuck write gives its message back;
        3. stop the heartbeat last, so messages still being worked stay invisible meanwhile.
        A worker blocked in a long poll returns within wait_time_seconds and releases what it got.
        """
        started = time.monotonic()
        self.stopping.set()
        self._join_until(started + 0.8 * timeout)
        self.abort.set()
        finished = self._join_until(started + max(0.0, timeout - 0.5))
        self.heartbeat.stop()
        if not finished:
            log.warning("shutdown_incomplete", workers_still_running=self._running())
        return finished

    def _running(self) -> int:
        return sum(thread.is_alive() for thread in self._threads)

    def _join_until(self, deadline: float) -> bool:
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return self._running() == 0

    def _run(self) -> None:
        failures = 0
        while not self.stopping.is_set():
            try:
                self.run_once()
                failures = 0
            except Exception as exc:
                # A worker never dies: log, back off (waking early on stop) and poll again.
                failures += 1
                fields = {"error": type(exc).__name__, "consecutive_failures": failures}
                if is_aws_error(exc):
                    log.warning("worker_aws_error", detail=str(exc)[:300], **fields)
                else:
                    log.exception("worker_error", **fields)
                self.stopping.wait(error_backoff(failures))

    def run_once(self) -> None:
        messages = self._queue.receive(
            max_messages=self._max, wait_seconds=self._wait, visibility_timeout=self._visibility
        )
        self._last_receive = time.monotonic()
        self._metrics.last_receive.set_to_current_time()
        if not messages:
            return
        self._metrics.messages_received.inc(len(messages))
        self._metrics.in_flight.inc(len(messages))
        self.heartbeat.hold(messages)
        done: list[Message] = []
        unstarted: list[Message] = []
        try:
            for i, message in enumerate(messages):
                if self.stopping.is_set():
                    unstarted = list(messages[i:])
                    break
                if self._processor.handle(message):
                    done.append(message)
        finally:
            self.heartbeat.drop(messages)
            self._settle(done, unstarted)
            self._metrics.in_flight.dec(len(messages))

    def _settle(self, done: list[Message], unstarted: list[Message]) -> None:
        """Delete finished messages, release unstarted ones; a failure here means a redelivery."""
        if done:
            _logged_failure("delete_failed", done, lambda: self._queue.delete(done))
        if unstarted:
            failed = _logged_failure(
                "release_failed", unstarted, lambda: self._queue.change_visibility(unstarted, 0)
            )
            if failed is not None:
                log.info("messages_released", messages=len(unstarted) - len(failed))


def _logged_failure(
    event: str, batch: list[Message], call: Callable[[], list[Message]]
) -> list[Message] | None:
    """`call()`, or None after logging `event` if AWS refused it (other errors propagate)."""
    try:
        return call()
    except Exception as exc:
        if not is_aws_error(exc):
            raise
        log.warning(event, messages=len(batch), error=type(exc).__name__)
        return None
