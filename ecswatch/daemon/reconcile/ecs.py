"""Reads of the ECS API for reconciliation: rate-limited, paginated, retried on throttling, counted.

The reconciler must never hurt the fleet it watches: ECS's API rate limits are per account and
region and shared with the service scheduler, the console and every deploy tool. So every call
waits for a token of a bucket of `rate` calls per second; a ThrottlingException halves the rate
for the rest of the pass and is retried with jittered exponential backoff (retry.Retrier), and
every wait wakes early at shutdown.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.daemon.aws.retry import Retrier, RetryPolicy

# A pass is not in a hurry: a minute of backoff on throttling beats giving up.
ECS_READ = RetryPolicy(attempts=10, max_seconds=60.0, initial_wait=0.5, max_wait=10.0)
THROTTLING_CODES = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException"})
PAGE_SIZE = 100  # the largest maxResults of ListTasks / ListContainerInstances / ListServices
OPERATIONS = (
    "ListClusters",
    "DescribeClusters",
    "ListTasks",
    "DescribeTasks",
    "ListContainerInstances",
    "DescribeContainerInstances",
    "ListServices",
    "DescribeServices",
)


class Stopping(Exception):  # noqa: N818 (a signal, not an error)
    """The daemon is stopping (or the lease was lost): abandon the pass."""


class RateLimiter:
    """At most `rate` calls per second: halved on throttling (down to a sixteenth), and grown
    back by a twentieth per accepted call (AIMD, as TCP and botocore's adaptive mode do)."""

    def __init__(
        self, rate: float, stop: threading.Event, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.initial_rate = rate
        self.rate = rate
        self._floor = rate / 16
        self._stop = stop
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.rate = self.initial_rate

    def throttled(self) -> None:
        self.rate = max(self._floor, self.rate / 2)

    def accepted(self) -> None:
        self.rate = min(self.initial_rate, self.rate + self.initial_rate / 20)

    def acquire(self) -> None:
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.rate
        if slot > now and self._stop.wait(slot - now):
            raise Stopping
        if self._stop.is_set():
            raise Stopping


class EcsApi:
    """The ECS calls of a pass; `on_call(operation)` and `on_throttle(operation)` count them."""

    def __init__(
        self,
        client: Any,
        retrier: Retrier,
        limiter: RateLimiter,
        *,
        on_call: Callable[[str], None] = lambda operation: None,
        on_throttle: Callable[[str], None] = lambda operation: None,
    ) -> None:
        self._client = client
        self._retrier = retrier
        self.limiter = limiter
        self._on_call = on_call
        self._on_throttle = on_throttle
        self.calls = 0  # made so far, retries included

    def call(self, operation: str, **params: Any) -> dict[str, Any]:
        method = getattr(self._client, _snake(operation))

        def attempt() -> dict[str, Any]:
            self.limiter.acquire()
            self.calls += 1
            self._on_call(operation)
            try:
                response: dict[str, Any] = method(**params)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in THROTTLING_CODES:
                    self._on_throttle(operation)
                    self.limiter.throttled()
                raise
            self.limiter.accepted()
            return response

        return self._retrier(operation, attempt)

    def pages(self, operation: str, key: str, **params: Any) -> Iterator[list[str]]:
        """Each page of a List* call (at most PAGE_SIZE ARNs), one call per page."""
        token: str | None = None
        while True:
            extra = {"nextToken": token} if token else {}
            response = self.call(operation, maxResults=PAGE_SIZE, **params, **extra)
            yield list(response.get(key, []))
            token = response.get("nextToken")
            if not token:
                return

    def cluster_arns(self, names: list[str]) -> list[str]:
        """The full ARNs of `names` (names or ARNs), or of every cluster when `names` is empty.

        Full ARNs carry the account and region: only what these credentials can see.
        """
        if not names:
            return [arn for page in self.pages("ListClusters", "clusterArns") for arn in page]
        found: list[str] = []
        for start in range(0, len(names), PAGE_SIZE):
            response = self.call("DescribeClusters", clusters=names[start : start + PAGE_SIZE])
            found += [c["clusterArn"] for c in response.get("clusters", []) if c.get("clusterArn")]
        return found


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
