"""The worker pool: workers take a message (or a broken route's probe), process it and settle
it from its fate; the pool wires the buffer, the fetchers, the in-flight owner and the pause
policy together, and answers for their health.

    fetchers --(buffer.py)--> workers --> InFlight (delete | release | keep)
                                  \\--> Pause (held while its route is broken, probes)

Workers only ever do the write, so `count` writes are in flight whenever there is work, while
receives and deletes overlap with them on threads of their own: one of each per three workers,
and at least two fetchers (a ReceiveMessage of ten takes a few PutItem round trips).

Why this is safe under every interleaving: a message is deleted only after its fate is
durable (see processor.py), so a crash, a SIGKILL or an expired visibility can only cause a
redelivery, and a redelivery is classified duplicate/stale by the conditional write (store.py).
Every received message is held (inflight.py) until it is settled exactly once, so another
replica does not pick it up meanwhile; a message whose route is broken stays held by the
pause policy (pause.py) until the route recovers; prefetched messages that no worker started
when we stop are made visible again at once (shutdown.py).
"""

from __future__ import annotations

import math
import threading
import time

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.buffer import Buffer
from ecswatch.daemon.pipeline.fate import Fate
from ecswatch.daemon.pipeline.fetcher import (
    POLL_SECONDS,
    Fetchers,
    error_backoff,
    fetcher_threads,
    log_failure,
)
from ecswatch.daemon.pipeline.inflight import InFlight
from ecswatch.daemon.pipeline.pause import Pause, Verdict
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message, Queue
from ecswatch.daemon.pipeline.shutdown import stop_pipeline

MIN_WAIT_SECONDS = 0.05  # a worker waiting for a probe's time never spins faster than this


def deleter_threads(count: int) -> int:
    """DeleteMessageBatch calls in flight for `count` workers: one per three workers."""
    return math.ceil(count / 3)


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
        self._processor = processor
        # Every fetcher may have a whole batch in flight while the workers still have three
        # messages each (and at least a batch) waiting, so receives return before they run dry:
        # a ReceiveMessage of ten takes a few PutItem round trips.
        fetchers = fetcher_threads(count)
        self.buffer = Buffer(max(3 * count, max_messages) + fetchers * max_messages, max_messages)
        self._ticks: dict[str, float] = {}  # loop name -> when it last went round
        self.inflight = InFlight(
            queue,
            metrics,
            visibility_timeout=visibility_timeout,
            deleter_threads=deleter_threads(count),
            tick=self._tick,
        )
        self.pause = pause if pause is not None else Pause(metrics, abort=abort)
        self.stopping = threading.Event()  # stop receiving and starting messages
        self.abort = abort  # past the drain deadline: retries give up at once
        self.fetchers = Fetchers(
            queue,
            self.buffer,
            self.inflight,
            self.pause,
            metrics,
            threads=fetchers,
            wait_time_seconds=wait_time_seconds,
            visibility_timeout=visibility_timeout,
            stopping=self.stopping,
            tick=self._tick,
        )
        self._workers = [
            threading.Thread(target=self._work, name=f"ecswatch-worker-{i}", daemon=True)
            for i in range(count)
        ]

    def start(self) -> None:
        self.inflight.start()
        for thread in self._workers + self.fetchers.threads:
            thread.start()

    def all_alive(self) -> bool:
        threads = self._workers + self.fetchers.threads
        return all(t.is_alive() for t in threads) and self.inflight.is_alive()

    def stalled(self, bound: float) -> list[str]:
        """Loops that have not gone round for `bound` seconds: wedged, not merely paused."""
        now = time.monotonic()
        return sorted(name for name, last in list(self._ticks.items()) if now - last > bound)

    def _tick(self, name: str) -> None:
        self._ticks[name] = time.monotonic()

    def seconds_since_receive(self) -> float | None:
        last = self.fetchers.last_receive
        return None if last is None else time.monotonic() - last

    def shutdown(self, deadline: float) -> bool:
        """Ordered stop by one deadline (time.monotonic()), see shutdown.py; True when every
        message was settled."""
        return stop_pipeline(
            deadline=deadline,
            stopping=self.stopping,
            abort=self.abort,
            workers=self._workers,
            fetchers=self.fetchers.threads,
            open_poll_seconds=self.fetchers.open_poll_seconds,
            buffer=self.buffer,
            pause=self.pause,
            inflight=self.inflight,
        )

    def _work(self) -> None:
        failures = 0
        while (taken := self._next()) is not None:
            message, probe, epoch = taken
            outcome: Fate = fate.KEEP
            try:
                outcome = self._processor.handle(message)
                failures = 0
            except Exception as exc:
                # A worker never dies: log, back off (waking early on stop), carry on.
                failures += 1
                log_failure("worker", exc, failures)
                self.stopping.wait(error_backoff(failures))
            self._settle(message, outcome, probe=probe, epoch=epoch)

    def _next(self) -> tuple[Message, bool, int] | None:
        """The next message to work, whether it is a probe of a broken route, and the pause
        policy's epoch once it was taken (its write starts after: see pause.py); None once
        stopping."""
        name = threading.current_thread().name
        pause = self.pause
        while not self.stopping.is_set():
            self._tick(name)
            probe = pause.take_probe()
            if probe is not None:
                return probe, True, pause.epoch
            wait = pause.seconds_to_probe(POLL_SECONDS)
            message = self.buffer.take(max(MIN_WAIT_SECONDS, wait))
            if message is not None:
                return message, False, pause.epoch
        return None

    def _settle(self, message: Message, outcome: Fate, *, probe: bool, epoch: int) -> None:
        if outcome.deletes and not self.pause.watching:  # the hot path: nothing is broken
            self.inflight.delete(message)
            return
        settlement = self.pause.settled(message, outcome, probe=probe, epoch=epoch)
        verdict = settlement.verdict
        if verdict is Verdict.DELETE:
            self.inflight.delete(message)
        elif verdict is Verdict.RETRY:
            self.buffer.put_back([message])
        elif verdict is Verdict.KEEP:  # SQS redelivers it once its visibility runs out
            self.inflight.keep(message)
        for kept in settlement.give_back:
            self.inflight.keep(kept)
        if settlement.requeue:
            self.buffer.put_back(settlement.requeue)
