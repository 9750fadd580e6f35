"""Retry policies, in one place: which AWS errors are transient and how long we retry them.

Layering: every boto3 client is built with botocore retries off (`total_max_attempts=1`,
see `aws.client_config`), so each transient error is retried exactly once per policy here,
counted in `ecswatch_retries_total`, jittered (full jitter), and bounded both in attempts and
in time so a message's visibility (heartbeated by the worker) never runs out under a retry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
import tenacity

from ecswatch.daemon.errors import error_code, is_transient

log = structlog.get_logger("ecswatch.daemon.retry")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Shape of one policy; `attempts` and `max_seconds` bound it, whichever comes first."""

    attempts: int
    max_seconds: float
    initial_wait: float = 0.05
    max_wait: float = 5.0


# A write gets ~10 s at most: far inside the default 60 s visibility, which is heartbeated anyway.
WRITE = RetryPolicy(attempts=8, max_seconds=10.0)
# Deletes and visibility changes are cheap to lose (a redelivery is a duplicate): a few tries.
QUEUE_OP = RetryPolicy(attempts=4, max_seconds=5.0)


class Retrier:
    """Runs calls under a policy; sleeps wake early when `abort` is set (forced shutdown)."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        abort: threading.Event,
        on_retry: Callable[[str], None] = lambda operation: None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
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
            stop=(
                tenacity.stop_after_attempt(policy.attempts)
                | tenacity.stop_after_delay(policy.max_seconds)
                | tenacity.stop_when_event_set(abort)
            ),
            sleep=sleep if sleep is not None else _waiter(abort),
            before_sleep=before_sleep,
            reraise=True,
        )

    def __call__(self, operation: str, fn: Callable[[], T]) -> T:
        """Call `fn` (the AWS operation named `operation`) until it succeeds or the policy ends."""
        result: T = self._retrying(_invoke, operation, fn)
        return result


def _invoke(operation: str, fn: Callable[[], T]) -> T:
    return fn()


def _waiter(abort: threading.Event) -> Callable[[float], None]:
    def sleep(seconds: float) -> None:
        abort.wait(seconds)

    return sleep
