"""The reconciler's ECS rate limiter: AIMD on throttling, and a wait that ends at shutdown."""

from __future__ import annotations

import threading

import pytest

from ecswatch.daemon.reconcile.ecs import RateLimiter, Stopping


def test_throttling_halves_the_rate_to_a_floor_and_success_grows_it_back() -> None:
    """Each ThrottlingException halves the rate (not below 1/16); accepted calls add 1/20."""
    limiter = RateLimiter(8.0, threading.Event())
    for _ in range(10):
        limiter.throttled()
    assert limiter.rate == 0.5
    for _ in range(5):
        limiter.accepted()
    assert limiter.rate == pytest.approx(2.5)
    for _ in range(100):
        limiter.accepted()
    assert limiter.rate == 8.0


def test_a_wait_for_a_token_ends_when_the_daemon_stops() -> None:
    """At 0.1 calls/s the second call would wait 10 s; a set stop event ends it at once."""
    stop = threading.Event()
    now = [0.0]
    limiter = RateLimiter(0.1, stop, clock=lambda: now[0])
    limiter.acquire()
    stop.set()
    with pytest.raises(Stopping):
        limiter.acquire()
