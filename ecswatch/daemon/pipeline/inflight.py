"""The one owner of received messages: held from ReceiveMessage until settled exactly once,
by deletion, release (visible again now) or keeping (visible again at its timeout); while
held, a heartbeat extends its visibility so no other consumer picks it up.

Why every received message is settled exactly once: `received` puts it in `_held` as HELD;
the only ways out are `delete` (HELD -> DELETING, then gone when its DeleteMessageBatch
returned), `release` and `keep` (HELD -> gone), each taking the message out under one lock,
so a second settlement finds it missing and is refused (logged as a bug) instead of counted
twice. The gauge `ecswatch_messages_in_flight` is the size of `_held`, set under that lock.
Safety of deletion: a message is handed over only once its fate is durable (processor.py) and
stays held (heartbeated) until the delete returned, so a crash or a failed delete only means a
redelivery, which the conditional write classifies as a duplicate.
An extension SQS refuses for one entry as the sender's fault (past its 12-hour visibility cap,
a receipt handle it no longer knows) is not asked again: the message becomes visible at its
timeout and is redelivered (docs/guarantees.md); what failed on SQS's side (a whole call, or
entries still failing after their resends) is tried again at the next tick; calls that failed
whole are one `heartbeat_failed` line a beat, not one per ten held messages every second.
"""

from __future__ import annotations

import collections
import enum
import math
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.deleter import Deleter
from ecswatch.daemon.pipeline.queue import BATCH, Message, Queue

log = structlog.get_logger("ecswatch.daemon.pipeline.inflight")

HEARTBEAT_BATCHES = 4  # ChangeMessageVisibilityBatch calls in flight at once


class _State(enum.Enum):
    HELD = "held"
    DELETING = "deleting"


class InFlight:
    """Every message between its receive and its settlement, and the heartbeat that keeps it."""

    def __init__(
        self,
        queue: Queue,
        metrics: Metrics,
        *,
        visibility_timeout: int,
        deleter_threads: int = 1,
        linger: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        tick: Callable[[str], None] = lambda name: None,
    ) -> None:
        self._queue, self._metrics = queue, metrics
        self._visibility = visibility_timeout
        self._clock, self._tick = clock, tick
        #: receipt handle -> (message, state, when its visibility was last set)
        self._held: dict[str, tuple[Message, _State, float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.deleter = Deleter(
            queue.delete,
            self._deleted,
            threads=deleter_threads,
            linger=linger,
            clock=clock,
            tick=tick,
        )
        self._thread = threading.Thread(target=self._run, name="ecswatch-heartbeat", daemon=True)

    # -- settlement ---------------------------------------------------------------------------

    def received(self, messages: Sequence[Message]) -> None:
        now = self._clock()
        with self._lock:
            for m in messages:
                self._held[m.receipt_handle] = (m, _State.HELD, now)
            self._metrics.in_flight.set(len(self._held))

    def delete(self, message: Message) -> None:
        """Its fate is durable: delete it (batched); it stays heartbeated until deleted."""
        if self._settle([message], keep_held=True):
            self.deleter.add(message)

    def release(self, messages: Sequence[Message], *, after_seconds: int = 0) -> None:
        """Nobody will work these now: make them visible again at once (or `after_seconds`)."""
        settled = self._settle(messages)
        if not settled:
            return
        try:
            failed = self._queue.change_visibility(settled, after_seconds)
            log.info("messages_released", messages=len(settled) - len(failed))
        except Exception as exc:  # they become visible at their timeout instead
            log.warning("release_failed", messages=len(settled), error=type(exc).__name__)

    def keep(self, message: Message) -> None:
        """Not done: stop heartbeating it, SQS redelivers it once its visibility runs out."""
        self._settle([message])

    def _settle(self, messages: Sequence[Message], *, keep_held: bool = False) -> list[Message]:
        settled: list[Message] = []
        with self._lock:
            for m in messages:
                entry = self._held.get(m.receipt_handle)
                if entry is None or entry[1] is not _State.HELD:
                    log.error("message_settled_twice", message_id=m.message_id)
                    continue
                settled.append(m)
                if keep_held:
                    self._held[m.receipt_handle] = (m, _State.DELETING, entry[2])
                else:
                    del self._held[m.receipt_handle]
            self._metrics.in_flight.set(len(self._held))
        return settled

    def _deleted(self, batch: Sequence[Message]) -> None:
        """The Deleter's call once a batch's DeleteMessageBatch returned, whatever it said."""
        with self._lock:
            for m in batch:
                self._held.pop(m.receipt_handle, None)
            self._metrics.in_flight.set(len(self._held))

    def held(self) -> int:
        with self._lock:
            return len(self._held)

    # -- heartbeat ----------------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """The heartbeat ticks at a sixth of the visibility and extends at a third, so a
        message is extended with at least two thirds of its visibility left."""
        return max(0.5, self._visibility / 6)

    def due(self) -> list[Message]:
        """Messages whose visibility was set a third of it ago or more."""
        now = self._clock()
        with self._lock:
            return [m for m, _, since in self._held.values() if now - since >= self._visibility / 3]

    def beat(self) -> None:
        due = self.due()
        if not due:
            return
        # SQS runs the new visibility from when it applied the call, at or after this: counting
        # from the answer instead would let a slow answer eat the margin the next beat needs.
        sent = self._clock()
        refused, failed, errors = self._extend_side_by_side(
            [due[i : i + BATCH] for i in range(0, len(due), BATCH)]
        )
        if errors:  # one line a beat, however many calls failed whole
            log.warning("heartbeat_failed", calls=len(errors), messages=len(failed), **errors[0])
        with self._lock:
            for m in due:
                entry = self._held.get(m.receipt_handle)
                if entry is None or m.receipt_handle in failed:
                    continue  # settled meanwhile, or tried again at the next tick
                # Refused for this entry: asking again would be refused again (never due).
                since = math.inf if m.receipt_handle in refused else sent
                self._held[m.receipt_handle] = (m, entry[1], since)
        log.debug("visibility_extended", messages=len(due) - len(failed) - len(refused))

    def _extend_side_by_side(
        self, chunks: list[list[Message]]
    ) -> tuple[set[str], set[str], list[dict[str, str]]]:
        """Extend every chunk, up to HEARTBEAT_BATCHES calls at once, so with hundreds held the
        last batch does not wait behind the first's retries. Daemon threads, not an executor:
        a call hanging at exit must not hold the process. Returns (refused, failed) handles
        and what each call that failed whole raised."""
        pending = collections.deque(chunks)
        refused: set[str] = set()
        failed: set[str] = set()
        errors: list[dict[str, str]] = []

        def run() -> None:
            while pending:
                try:
                    chunk = pending.popleft()
                except IndexError:
                    return
                try:
                    chunk_refused, chunk_failed = self._extend(chunk)
                except Exception as exc:  # tried again at the next tick
                    errors.append({"error": type(exc).__name__, "detail": str(exc)[:300]})
                    chunk_refused, chunk_failed = set(), {m.receipt_handle for m in chunk}
                refused.update(chunk_refused)
                failed.update(chunk_failed)

        helpers = [
            threading.Thread(target=run, name="ecswatch-beat", daemon=True)
            for _ in range(min(HEARTBEAT_BATCHES, len(chunks)) - 1)
        ]
        for helper in helpers:
            helper.start()
        run()
        for helper in helpers:
            helper.join()
        return refused, failed, errors

    def _extend(self, chunk: list[Message]) -> tuple[set[str], set[str]]:
        """(refused, failed) handles: refused as the sender's fault entry by entry, failed on
        SQS's side; raises when the call failed as a whole."""
        refused, failed = self._queue.set_visibility(chunk, self._visibility)
        return {m.receipt_handle for m in refused}, {m.receipt_handle for m in failed}

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self.deleter.start()

    def is_alive(self) -> bool:
        return self._thread.is_alive() and self.deleter.is_alive()

    def close(self, timeout: float) -> bool:
        """Flush the deletes, then stop the heartbeat (last, so what is still being deleted
        stays invisible meanwhile); True when every delete was sent in time."""
        deadline = time.monotonic() + timeout
        flushed = self.deleter.close(timeout)
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=max(0.1, deadline - time.monotonic()))
        return flushed

    def _run(self) -> None:
        # Wakes at least every second (cheap: `due` scans the held set), so /healthz sees it.
        while not self._stop.wait(min(self.interval, 1.0)):
            self._tick("heartbeat")
            try:
                self.beat()
            except Exception as exc:
                log.warning("heartbeat_failed", error=type(exc).__name__, detail=str(exc)[:300])
