"""The lease's guard on every request a pass sends: stop when asked, renew when due, and never
act past the lease.

Why every request and not every batch: one batch (DescribeTasks retried for up to a minute,
then up to 100 writes) or the whole-table scan of a vanish check can outlast the lease, and a
holder still acting after its lease ran out works beside the next holder. So the reconciler's
clients run `check()` before each request (botocore's `before-call` event, so retries and
scan pages included): it raises Stopping once the daemon stops, renews the lease when a third
of it has passed or less is left than one attempt may take, and raises Stopping when the
renewal is refused (another replica holds it).
Correctness: a request starts only with at least `attempt_seconds` of lease left, and the
daemon builds the reconciler's clients to time out within that (`attempt_timeouts`), so every
request ends before the lease does, which is before any other replica can take it
(lease.SAFETY_SECONDS). Waits between requests (backoff, the rate limit) send nothing; the
next request renews first, or stops if another replica took over meanwhile. Writes no
version guards are fenced besides (service_counts.py), for a process paused past all this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from ecswatch.daemon.reconcile.ecs import Stopping
from ecswatch.daemon.reconcile.lease import Lease

#: the daemon's own clients' connect + read timeouts: an attempt never needs longer
ATTEMPT_CAP_SECONDS = 15.0


def attempt_timeouts(lease_seconds: float) -> tuple[float, float]:
    """(connect, read) timeouts for the reconciler's clients: a third of the lease in all,
    at most 15 s (5 + 10, as the daemon's other clients)."""
    total = min(ATTEMPT_CAP_SECONDS, lease_seconds / 3)
    return total / 3, total * 2 / 3


class LeaseGuard:
    """`watch(client)` hooks a client; requests it sends on a thread inside `active()` are
    checked first. Other threads sharing the client (tests, the pipeline) are not touched."""

    def __init__(self, lease: Lease, stop: threading.Event, on_lost: Callable[[], None]) -> None:
        self.lease = lease
        self._stop = stop
        self._on_lost = on_lost
        self.attempt_seconds = sum(attempt_timeouts(lease.lease_seconds))
        self._local = threading.local()

    def watch(self, *clients: Any) -> None:
        for client in clients:
            client.meta.events.register(
                "before-call", self._before_call, unique_id=f"ecswatch-lease-guard-{id(self)}"
            )

    @contextmanager
    def active(self) -> Iterator[None]:
        self._local.on = True
        try:
            yield
        finally:
            self._local.on = False

    def _before_call(self, **_: Any) -> None:
        if getattr(self._local, "on", False) and not getattr(self._local, "renewing", False):
            self.check()

    def check(self) -> None:
        """Raise Stopping unless this replica may send one more request under the lease."""
        if self._stop.is_set():
            raise Stopping
        if not (self.lease.due() or self.lease.time_left() < self.attempt_seconds):
            return
        self._local.renewing = True  # the renewal is a request of the same client
        try:
            renewed = self.lease.renew()
        finally:
            self._local.renewing = False
        if not renewed:
            self._on_lost()
            raise Stopping
