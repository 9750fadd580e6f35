"""Deletes finished messages in batches of up to ten, whichever worker finished them.

Batching deletes across workers is what makes them cost a tenth of a round trip per message
even when each receive brings back a single message. The Deleter owns no message: the
in-flight owner (inflight.py) hands it messages whose fate is durable and is told, through
`done`, once each batch's DeleteMessageBatch returned, whatever it answered.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from ecswatch.daemon.pipeline.queue import BATCH, Message

log = structlog.get_logger("ecswatch.daemon.pipeline.deleter")


class Deleter:
    """Deletes ten at a time, or after `linger` seconds when fewer are waiting; `threads`
    batches may be in flight at once.

    A deleter is woken only for a whole batch; a short one is found by its own `linger`-long
    wait (which also ticks for /healthz). Waking one on every first message cost a thread
    hand-off per short batch, for a delete that lingers anyway.
    """

    def __init__(
        self,
        delete: Callable[[Sequence[Message]], object],
        done: Callable[[Sequence[Message]], None],
        *,
        threads: int = 1,
        linger: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        tick: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._delete, self._done, self._tick = delete, done, tick
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
            if len(self._pending) % BATCH == 0:  # a whole batch: wake a deleter for it
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
            if thread.ident is not None:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)

    def next_batch(self, name: str = "deleter") -> list[Message] | None:
        """Up to ten messages once a batch is full or its oldest has lingered; None when closed
        and empty."""
        with self._ready:
            while True:
                self._tick(name)
                if self._pending:
                    waited = self._clock() - self._pending[0][1]
                    if len(self._pending) >= BATCH or waited >= self._linger or self._closing:
                        count = min(BATCH, len(self._pending))
                        return [self._pending.popleft()[0] for _ in range(count)]
                    self._ready.wait(self._linger - waited)
                elif self._closing:
                    return None
                else:
                    self._ready.wait(self._linger)

    def _run(self) -> None:
        name = threading.current_thread().name
        while (batch := self.next_batch(name)) is not None:
            try:
                self._delete(batch)
            except Exception as exc:
                # Not deleted means redelivered later, then classified a duplicate: log, go on.
                log.warning(
                    "delete_failed",
                    messages=len(batch),
                    error=type(exc).__name__,
                    detail=str(exc)[:300],
                )
            finally:
                self._done(batch)
