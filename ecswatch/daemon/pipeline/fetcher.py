"""The fetchers: threads that long-poll SQS into the prefetch buffer, a whole batch at a time,
while the pause policy lets them receive; and the backoff every failing loop uses.

A received message is handed to the in-flight owner (held, heartbeated) before any worker can
see it, so it is settled exactly once whatever happens next (inflight.py).
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable

import structlog

from ecswatch.daemon.aws.errors import is_aws_error
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.buffer import Buffer
from ecswatch.daemon.pipeline.inflight import InFlight
from ecswatch.daemon.pipeline.pause import Pause
from ecswatch.daemon.pipeline.queue import Message, Queue

log = structlog.get_logger("ecswatch.daemon.pipeline.fetcher")

MAX_ERROR_BACKOFF_SECONDS = 30.0
POLL_SECONDS = 0.5  # how often an idle thread looks at the stop flag


def fetcher_threads(count: int) -> int:
    """Receives in flight for `count` workers: one per three workers, and never fewer than two,
    since a ReceiveMessage of ten takes several PutItem round trips (long-poll set-up, payload)."""
    return max(2, math.ceil(count / 3))


def error_backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff for a failing loop: never spin, never stall long."""
    return rng() * min(MAX_ERROR_BACKOFF_SECONDS, 0.5 * 2.0 ** min(failures, 10))


def log_failure(where: str, exc: Exception, failures: int) -> None:
    fields = {"error": type(exc).__name__, "consecutive_failures": failures}
    if is_aws_error(exc):
        log.warning(f"{where}_aws_error", detail=str(exc)[:300], **fields)
    else:
        log.exception(f"{where}_error", **fields)


class Fetchers:
    """`threads` long-poll loops filling `buffer`, until `stopping` is set."""

    def __init__(
        self,
        queue: Queue,
        buffer: Buffer,
        inflight: InFlight,
        pause: Pause,
        metrics: Metrics,
        *,
        threads: int,
        wait_time_seconds: int,
        visibility_timeout: int,
        stopping: threading.Event,
        tick: Callable[[str], None],
    ) -> None:
        self._queue, self._buffer, self._inflight = queue, buffer, inflight
        self._pause, self._metrics = pause, metrics
        self._wait, self._visibility = wait_time_seconds, visibility_timeout
        self._stopping, self._tick = stopping, tick
        self.last_receive: float | None = None
        self._polls: dict[int, float] = {}  # thread ident -> when its open ReceiveMessage began
        self.threads = [
            threading.Thread(target=self._run, name=f"ecswatch-fetcher-{i}", daemon=True)
            for i in range(threads)
        ]

    def open_poll_seconds(self) -> float:
        """Seconds until the last of our open long polls ends on SQS's side (0 with none open):
        SQS keeps a poll open for its wait time, and fills it, whether or not we still read it."""
        now = time.monotonic()
        return max((begun + self._wait - now for begun in list(self._polls.values())), default=0.0)

    def _run(self) -> None:
        name = threading.current_thread().name
        failures = 0
        while not self._stopping.is_set():
            self._tick(name)
            if not self._pause.receiving:
                # As many messages as we may hold for broken routes are held: no ReceiveMessage
                # until a route recovers (pause.py).
                self._pause.wait(POLL_SECONDS)
                continue
            try:
                self._fetch_once()
                failures = 0
            except Exception as exc:
                # A fetcher never dies either: an outage means backing off, not spinning.
                failures += 1
                log_failure("receive", exc, failures)
                self._stopping.wait(error_backoff(failures))

    def _fetch_once(self) -> None:
        room = self._buffer.reserve(POLL_SECONDS)
        if not room:
            return
        messages: list[Message] = []
        ident = threading.get_ident()
        self._polls[ident] = time.monotonic()
        try:
            messages = self._queue.receive(
                max_messages=room, wait_seconds=self._wait, visibility_timeout=self._visibility
            )
        finally:
            del self._polls[ident]
            if messages:
                self._metrics.messages_received.inc(len(messages))
                self._inflight.received(messages)
            self._buffer.received(room, messages)
        self.last_receive = time.monotonic()
        self._metrics.last_receive.set_to_current_time()
        if messages and self._stopping.is_set():  # received during the stop: give them back
            self._inflight.release(self._buffer.drain())
