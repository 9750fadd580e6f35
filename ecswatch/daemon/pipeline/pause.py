"""Pause and probe: when a failure is the world's (errors.py), the consumer stops receiving and
starting messages, and lets one message at a time through as a probe, with capped exponential
backoff, until a write succeeds again.

Why a pause never burns receive counts: while paused no ReceiveMessage is sent, and the
messages already received stay held (heartbeated invisible, inflight.py), so none of them is
received again, hence none moves towards the queue's maxReceiveCount, however long the outage.
A probe is a real write of a held message: its success is the evidence that the world answers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

import structlog

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.fate import Action, Fate

log = structlog.get_logger("ecswatch.daemon.pipeline.pause")

FIRST_PROBE_SECONDS = 0.5
MAX_PROBE_SECONDS = 20.0


def probe_delay(failures: int, rng: Callable[[], float] = random.random) -> float:
    """Capped exponential backoff with equal jitter: 0.5 s, 1 s, 2 s ... up to 20 s."""
    ceiling = min(MAX_PROBE_SECONDS, FIRST_PROBE_SECONDS * 2.0 ** min(failures, 16))
    return ceiling / 2 + rng() * ceiling / 2


class Pause:
    """The consumer's pause state; thread-safe; one WARNING line per transition."""

    def __init__(
        self,
        metrics: Metrics,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._metrics, self._clock, self._rng = metrics, clock, rng
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._reason: str | None = None
        self._since = 0.0
        self._failures = 0  # failed probes in this pause
        self._next_probe = 0.0
        self._probing = False

    @property
    def reason(self) -> str | None:
        return self._reason

    @property
    def paused(self) -> bool:
        return self._reason is not None

    @property
    def probing(self) -> bool:
        return self._probing

    def take_probe(self) -> bool:
        """True for the one caller allowed to try a message now, while paused."""
        with self._lock:
            if self._reason is None or self._probing or self._clock() < self._next_probe:
                return False
            self._probing = True
            return True

    def seconds_to_probe(self) -> float:
        with self._lock:
            return max(0.0, self._next_probe - self._clock())

    def wait(self, timeout: float) -> None:
        """Sleep until the state changes or `timeout` passes."""
        with self._changed:
            self._changed.wait(timeout)

    def settled(self, fate: Fate, *, probe: bool) -> bool:
        """A message's fate is known: a systemic one pauses (or extends the pause), any
        other answer from the world (done, dead-lettered) resumes. True when this fate is the
        one that started a pause."""
        with self._changed:
            if probe:
                self._probing = False
            tripped = False
            if fate.action is Action.SYSTEMIC:
                tripped = self._fail(fate.reason or "rejected_request", probe=probe)
            elif fate.deletes and self._reason is not None:
                self._resume()
            self._changed.notify_all()
            return tripped

    def _fail(self, reason: str, *, probe: bool) -> bool:
        now = self._clock()
        tripped = self._reason is None
        if tripped:
            self._since, self._failures = now, 0
            self._set_reason(reason)
            log.warning("consumer_paused", reason=reason)
        elif probe:
            self._failures += 1
            if reason != self._reason:
                self._set_reason(reason)
                log.warning("consumer_pause_reason_changed", reason=reason)
        else:
            return False  # a write started before the pause failed alike: nothing new
        self._next_probe = now + probe_delay(self._failures, self._rng)
        return tripped

    def _resume(self) -> None:
        log.warning(
            "consumer_resumed",
            reason=self._reason,
            paused_seconds=round(self._clock() - self._since, 1),
            failed_probes=self._failures,
        )
        self._set_reason(None)

    def _set_reason(self, reason: str | None) -> None:
        if self._reason is not None:
            self._metrics.paused.labels(reason=self._reason).set(0)
        if reason is not None:
            self._metrics.paused.labels(reason=reason).set(1)
        self._reason = reason
