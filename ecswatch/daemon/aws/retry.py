"""Retry policies, in one place: how long we retry transient AWS errors (errors.py says which
are), and the process-wide retry budget.

Layering: every boto3 client is built with botocore retries off (`total_max_attempts=1`,
see `aws.client_config`), so each transient error is retried exactly once per policy here,
counted in `ecswatch_retries_total`, jittered (full jitter), and bounded in attempts and in
time so a message's visibility (heartbeated by the worker) never runs out under a retry.
The retry budget (RetryQuota, botocore standard mode's retry quota) is shared by every thread:
during a brownout sixteen workers do not multiply the load by eight; once it is spent, a
failure is final at once and the worker pauses (pause.py) instead of hammering.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import TypeVar

import structlog
import tenacity
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError

from ecswatch.daemon.aws.errors import error_code, is_transient

log = structlog.get_logger("ecswatch.daemon.aws.retry")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Shape of one policy; `attempts` and `max_seconds` bound it, whichever comes first."""

    attempts: int
    max_seconds: float
    initial_wait: float = 0.05
    max_wait: float = 5.0


# A write's retries start no sleep that would end past 10 s (stop_before_delay); the attempt
# after the last sleep may still take its full timeout (DynamoDB client: 5 s connect + 10 s
# read), so a write takes at most ~25 s: inside the default 60 s visibility, heartbeated anyway.
WRITE = RetryPolicy(attempts=8, max_seconds=10.0)
# Deletes and visibility changes are cheap to lose (a redelivery is a duplicate): a few tries.
QUEUE_OP = RetryPolicy(attempts=4, max_seconds=5.0)


class RetryQuota:
    """A token bucket of retries, as botocore's standard mode keeps one per client: a retry
    costs 5 tokens (10 after a timeout), a call that succeeds gives its retries' tokens back,
    one that succeeds at once gives 1; 500 to start with and at most."""

    CAPACITY = 500
    RETRY_COST = 5
    TIMEOUT_RETRY_COST = 10

    def __init__(self, capacity: int = CAPACITY) -> None:
        self._capacity = capacity
        self._tokens = capacity
        self._lock = threading.Lock()

    @property
    def tokens(self) -> int:
        return self._tokens

    def acquire(self, error: BaseException | None) -> int:
        """Tokens taken for one retry after `error`; 0 when the budget is spent."""
        timeout = isinstance(error, ConnectTimeoutError | ReadTimeoutError)
        cost = self.TIMEOUT_RETRY_COST if timeout else self.RETRY_COST
        with self._lock:
            if self._tokens < cost:
                return 0
            self._tokens -= cost
            return cost

    def succeeded(self, spent: int) -> None:
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + (spent or 1))


class Retrier:
    """Runs calls under a policy and a shared retry budget; sleeps wake early when `abort`
    is set (forced shutdown)."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        abort: threading.Event,
        quota: RetryQuota | None = None,
        on_retry: Callable[[str], None] = lambda operation: None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._quota = quota if quota is not None else RetryQuota()
        self._spent = threading.local()  # tokens the current call's retries took, per thread
        self._head = threading.local()  # seconds the fast path's first attempt took, per thread

        def before_sleep(state: tenacity.RetryCallState) -> None:
            operation = str(state.args[0])
            on_retry(operation)
            outcome = state.outcome
            error = outcome.exception() if outcome is not None else None
            log.info(
                "aws_call_retry",
                operation=operation,
                attempt=state.attempt_number,
                error=type(error).__name__,
                code=error_code(error),
                wait_seconds=round(state.upcoming_sleep, 3),
            )

        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_transient),
            wait=tenacity.wait_random_exponential(
                multiplier=policy.initial_wait, max=policy.max_wait
            ),
            stop=tenacity.stop_any(
                tenacity.stop_after_attempt(policy.attempts),
                _BeforeDelay(self, policy.max_seconds),
                tenacity.stop_when_event_set(abort),
                _Budget(self),  # last: tokens are taken only for a retry that happens
            ),
            sleep=sleep if sleep is not None else _waiter(abort),
            before_sleep=before_sleep,
            reraise=True,
        )

    def __call__(self, operation: str, fn: Callable[[], T]) -> T:
        """Call `fn` (the AWS operation named `operation`) until it succeeds or the policy ends.

        Fast path: nearly every call succeeds at once, and for those tenacity's machinery (a
        call state, statistics, the stop and wait chain) is pure cost. So the first attempt
        runs here; its failure hands over to tenacity as attempt 1, already made (`_replay`),
        and its duration counts against `max_seconds` (`_BeforeDelay`): the same policy.
        """
        started = monotonic()
        try:
            result = fn()
        except Exception as exc:
            if not is_transient(exc):
                raise
            return self._retry(operation, fn, exc, monotonic() - started)
        self._quota.succeeded(0)
        return result

    def _retry(self, operation: str, fn: Callable[[], T], first: Exception, head: float) -> T:
        spent: list[int] = []
        self._spent.value = spent
        self._head.value = head
        result: T = self._retrying(_replay(first), operation, fn)
        self._quota.succeeded(sum(spent))
        return result

    def head_seconds(self) -> float:
        return float(getattr(self._head, "value", 0.0))

    def _budget_spent(self, state: tenacity.RetryCallState) -> bool:
        outcome = state.outcome
        cost = self._quota.acquire(outcome.exception() if outcome is not None else None)
        if not cost:
            log.debug("retry_budget_spent", operation=str(state.args[0]))
            return True
        self._spent.value.append(cost)
        return False


class _BeforeDelay(tenacity.stop.stop_base):
    """tenacity's stop_before_delay, counting the fast path's first attempt too."""

    def __init__(self, retrier: Retrier, max_seconds: float) -> None:
        self._retrier = retrier
        self._max = max_seconds

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        elapsed = (retry_state.seconds_since_start or 0.0) + self._retrier.head_seconds()
        return elapsed + retry_state.upcoming_sleep >= self._max


class _Budget(tenacity.stop.stop_base):
    def __init__(self, retrier: Retrier) -> None:
        self._retrier = retrier

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        return self._retrier._budget_spent(retry_state)


def _replay(first: Exception) -> Callable[[str, Callable[[], T]], T]:
    """tenacity's attempt function: attempt 1 is the fast path's, already failed with `first`;
    the later ones call `fn`."""
    pending = [first]

    def attempt(operation: str, fn: Callable[[], T]) -> T:
        if pending:
            raise pending.pop()
        return fn()

    return attempt


def _waiter(abort: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        abort.wait(seconds)

    return sleep
