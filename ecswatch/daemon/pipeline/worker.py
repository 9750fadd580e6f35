"""The worker pool: fetchers long-poll into a small prefetch buffer, workers write, the
in-flight owner settles each message (deletes batched, a visibility heartbeat); pause and
probe on systemic faults; an ordered shutdown.

    fetchers --(a few per worker, prefetched)--> workers --> InFlight (delete | release | keep)

Workers only ever do the write, so `count` writes are in flight whenever there is work, while
receives and deletes overlap with them on threads of their own: one of each per three workers,
and at least two fetchers (a ReceiveMessage of ten takes a few PutItem round trips).

Why this is safe under every interleaving: a message is deleted only after its fate is
durable (see processor.py), so a crash, a SIGKILL or an expired visibility can only cause a
redelivery, and a redelivery is classified duplicate/stale by the conditional write (store.py).
Every received message is held (inflight.py) until it is settled exactly once, so another
replica does not pick it up meanwhile; a message whose failure was systemic goes back to the
buffer, still held, and waits for the pause to end (pause.py); prefetched messages that no
worker started when we stop are made visible again at once.
"""

from __future__ import annotations

import collections
import math
import random
import threading
import time
from collections.abc import Callable

import structlog

from ecswatch.daemon.aws.errors import is_aws_error
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.fate import Action, Fate
from ecswatch.daemon.pipeline.inflight import InFlight
from ecswatch.daemon.pipeline.pause import Pause
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message, Queue

log = structlog.get_logger("ecswatch.daemon.pipeline.worker")

MAX_ERROR_BACKOFF_SECONDS = 30.0
POLL_SECONDS = 0.5  # how often an idle thread looks at the stop flag
#: a message that started this many pauses, with successes in between, is kept (given back
#: to SQS) instead of held again: it, not the world, is what fails
MAX_TRIPS_PER_MESSAGE = 3
RELEASE_BEHIND_POLL_SECONDS = 3  # visibility of messages given back while a poll is still open


def fetcher_threads(count: int) -> int:
    """Receives in flight for `count` workers: one per three workers, and never fewer than two,
    since a ReceiveMessage of ten takes several PutItem round trips (long-poll set-up, payload)."""
    return max(2, math.ceil(count / 3))


def deleter_threads(count: int) -> int:
    """DeleteMessageBatch calls in flight for `count` workers: one per three workers."""
    return math.ceil(count / 3)


def error_backoff(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Full-jitter exponential backoff for a failing loop: never spin, never stall long."""
    return rng() * min(MAX_ERROR_BACKOFF_SECONDS, 0.5 * 2.0 ** min(failures, 10))


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
        pause: Pause | None = None,
    ) -> None:
        self._queue = queue
        self._processor = processor
        self._metrics = metrics
        self._wait = wait_time_seconds
        self._max = max_messages
        self._visibility = visibility_timeout
        # Every fetcher may have a whole batch in flight while the workers still have three
        # messages each (and at least a batch) waiting, so receives return before they run dry:
        # a ReceiveMessage of ten takes a few PutItem round trips.
        fetchers = fetcher_threads(count)
        self._capacity = max(3 * count, max_messages) + fetchers * max_messages
        self._reserved = 0  # room promised to receives in flight
        self._ticks: dict[str, float] = {}  # loop name -> when it last went round
        self.inflight = InFlight(
            queue,
            metrics,
            visibility_timeout=visibility_timeout,
            deleter_threads=deleter_threads(count),
            tick=self._tick,
        )
        self.pause = pause if pause is not None else Pause(metrics)
        self._trips: dict[str, int] = {}  # receipt handle -> pauses this message started
        self.stopping = threading.Event()  # stop receiving and starting messages
        self.abort = abort  # past the drain deadline: retries give up at once
        self._last_receive: float | None = None
        self._unstarted: collections.deque[Message] = collections.deque()
        lock = threading.Lock()
        self._has_work = threading.Condition(lock)
        self._has_room = threading.Condition(lock)
        self._fetchers = [
            threading.Thread(target=self._fetch, name=f"ecswatch-fetcher-{i}", daemon=True)
            for i in range(fetchers)
        ]
        self._workers = [
            threading.Thread(target=self._work, name=f"ecswatch-worker-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        self.inflight.start()
        for thread in self._workers + self._fetchers:
            thread.start()

    def all_alive(self) -> bool:
        threads = self._workers + self._fetchers
        return all(t.is_alive() for t in threads) and self.inflight.is_alive()

    def stalled(self, bound: float) -> list[str]:
        """Loops that have not gone round for `bound` seconds: wedged, not merely paused."""
        now = time.monotonic()
        return sorted(name for name, last in list(self._ticks.items()) if now - last > bound)

    def _tick(self, name: str) -> None:
        self._ticks[name] = time.monotonic()

    def seconds_since_receive(self) -> float | None:
        last = self._last_receive
        return None if last is None else time.monotonic() - last

    def shutdown(self, deadline: float) -> bool:
        """Ordered stop by one deadline (time.monotonic()); True when every message was settled.

        1. stop receiving and starting messages; workers finish the one in hand;
        2. at 80% of the time left, abort retries so a stuck write gives its message back;
        3. release what was prefetched but never started, flush the deletes;
        4. stop the heartbeat last, so messages still being deleted stay invisible meanwhile.
        The abort point and the long poll: fetchers get one poll interval to leave, no more. One
        blocked in a long poll (up to wait_time_seconds, 20 s by default, which would not fit
        ECS's 30 s stopTimeout after a busy drain) is left to end with the process; what that
        cut-short poll would have returned stays invisible until its visibility timeout, then is
        redelivered (docs/guarantees.md). A poll that returns while we still drain gives its
        messages back at once (_fetch_once).
        """
        started = time.monotonic()
        self.stopping.set()
        with self._has_work:
            self._has_work.notify_all()
            self._has_room.notify_all()
        finished = _join(self._workers, started + 0.8 * (deadline - started))
        if not finished:
            self.abort.set()
            finished = _join(self._workers, deadline - 1.0)
        polling = not _join(self._fetchers, time.monotonic() + POLL_SECONDS)
        # Released at once, they would fall into a poll of ours still open and then die with
        # the process; visible again a little after we exit, the next consumer takes them.
        self.inflight.release(
            self._take_unstarted(), after_seconds=RELEASE_BEHIND_POLL_SECONDS if polling else 0
        )
        flushed = self.inflight.close(max(0.5, deadline - time.monotonic()))
        if not (finished and flushed):
            running = sum(t.is_alive() for t in self._workers)
            log.warning("shutdown_incomplete", threads_still_running=running, flushed=flushed)
        return finished and flushed

    def _fetch(self) -> None:
        name = threading.current_thread().name
        failures = 0
        while not self.stopping.is_set():
            self._tick(name)
            if self.pause.paused and self._probe_material():
                # No ReceiveMessage while paused, so receive counts stay put; only when no held
                # message is left to probe with (all given back) may one batch come in for that.
                self.pause.wait(POLL_SECONDS)
                continue
            try:
                self._fetch_once()
                failures = 0
            except Exception as exc:
                # A fetcher never dies either: an outage means backing off, not spinning.
                failures += 1
                _log_failure("receive", exc, failures)
                self.stopping.wait(error_backoff(failures))

    def _fetch_once(self) -> None:
        room = self._wait_for_room()
        if not room:
            return
        messages: list[Message] = []
        try:
            messages = self._queue.receive(
                max_messages=room, wait_seconds=self._wait, visibility_timeout=self._visibility
            )
        finally:
            self._received(room, messages)
        self._last_receive = time.monotonic()
        self._metrics.last_receive.set_to_current_time()
        if messages and self.stopping.is_set():  # received during the stop: give them back
            self.inflight.release(self._take_unstarted())

    def _probe_material(self) -> bool:
        with self._has_work:
            return bool(self._unstarted) or self.pause.probing

    def _wait_for_room(self) -> int:
        """How many messages to ask for: a full batch, once the buffer has room for one."""
        with self._has_room:
            if self._room() < self._max:
                self._has_room.wait(POLL_SECONDS)
            if self._room() < self._max:
                return 0
            self._reserved += self._max
            return self._max

    def _room(self) -> int:
        """Free places in the buffer, not counting those promised to receives in flight."""
        return self._capacity - len(self._unstarted) - self._reserved

    def _received(self, room: int, messages: list[Message]) -> None:
        """A receive returned: its room is no longer reserved, its messages wait for workers."""
        if messages:
            self._metrics.messages_received.inc(len(messages))
            self.inflight.received(messages)
        with self._has_work:
            self._reserved -= room
            self._unstarted.extend(messages)
            self._has_work.notify(len(messages))

    def _work(self) -> None:
        failures = 0
        while (taken := self._next()) is not None:
            message, probe = taken
            outcome: Fate = fate.KEEP
            try:
                outcome = self._processor.handle(message)
                failures = 0
            except Exception as exc:
                # A worker never dies: log, back off (waking early on stop), carry on.
                failures += 1
                _log_failure("worker", exc, failures)
                self.stopping.wait(error_backoff(failures))
            self._settle(message, outcome, probe=probe)

    def _settle(self, message: Message, outcome: Fate, *, probe: bool) -> None:
        # A write cut short by the shutdown's abort says nothing about the world.
        tripped = False if self.abort.is_set() else self.pause.settled(outcome, probe=probe)
        handle = message.receipt_handle
        if outcome.deletes:
            self._trips.pop(handle, None)
            self.inflight.delete(message)
        elif outcome.action is Action.SYSTEMIC:
            trips = self._trips[handle] = self._trips.get(handle, 0) + tripped
            if trips < MAX_TRIPS_PER_MESSAGE:
                with self._has_work:  # back in the buffer, still held, for after the pause
                    self._unstarted.append(message)
                    self._has_work.notify()
                return
            log.warning("message_kept_after_pauses", message_id=message.message_id, pauses=trips)
            self._trips.pop(handle, None)
            self.inflight.keep(message)
        else:  # kept: SQS redelivers it once its visibility runs out
            self._trips.pop(handle, None)
            self.inflight.keep(message)

    def _next(self) -> tuple[Message, bool] | None:
        """The next message to work and whether it is a probe; None once stopping. While
        paused, only the one probe the pause allows gets a message."""
        name = threading.current_thread().name
        with self._has_work:
            while not self.stopping.is_set():
                self._tick(name)
                probe = False
                if not self._unstarted:
                    self._has_work.wait(POLL_SECONDS)
                    continue
                if self.pause.paused:
                    if not self.pause.take_probe():
                        wait = min(POLL_SECONDS, self.pause.seconds_to_probe())
                        self._has_work.wait(max(0.05, wait))
                        continue
                    probe = True
                message = self._unstarted.popleft()
                # A fetcher waits for room for a whole batch: waking one for less only sends
                # it round its loop (a GIL hand-off per message, ~10% of the daemon's CPU).
                if self._room() >= self._max:
                    self._has_room.notify()
                return message, probe
            return None

    def _take_unstarted(self) -> list[Message]:
        with self._has_work:
            taken = list(self._unstarted)
            self._unstarted.clear()
            return taken


def _join(threads: list[threading.Thread], deadline: float) -> bool:
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return not any(thread.is_alive() for thread in threads)


def _log_failure(where: str, exc: Exception, failures: int) -> None:
    fields = {"error": type(exc).__name__, "consecutive_failures": failures}
    if is_aws_error(exc):
        log.warning(f"{where}_aws_error", detail=str(exc)[:300], **fields)
    else:
        log.exception(f"{where}_error", **fields)
