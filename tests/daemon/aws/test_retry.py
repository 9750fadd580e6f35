"""The retry wrapper: a first-attempt success skips tenacity, a failure gets the whole policy."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError

from ecswatch.daemon.aws import retry
from ecswatch.daemon.aws.retry import Retrier, RetryPolicy, RetryQuota
from tests.daemon.aws.test_errors import client_error

POLICY = RetryPolicy(attempts=4, max_seconds=10.0)


def flaky(failures: int, code: str = "ThrottlingException") -> tuple[list[int], object]:
    calls: list[int] = []

    def call() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise client_error(code)
        return "ok"

    return calls, call


def test_transient_failures_are_retried_with_jittered_sleeps_and_counted() -> None:
    """Two throttles then success: three calls, two sleeps, two retries counted."""
    sleeps: list[float] = []
    retried: list[str] = []
    retrier = Retrier(POLICY, abort=threading.Event(), sleep=sleeps.append, on_retry=retried.append)
    calls, call = flaky(2)
    assert retrier("PutItem", call) == "ok"  # type: ignore[arg-type]
    assert len(calls) == 3
    assert len(sleeps) == 2
    assert retried == ["PutItem", "PutItem"]


def test_attempts_are_bounded_counting_the_first() -> None:
    """`attempts` is every call, the fast path's first included."""
    retrier = Retrier(POLICY, abort=threading.Event(), sleep=lambda s: None)
    calls, call = flaky(100)
    with pytest.raises(ClientError):
        retrier("PutItem", call)  # type: ignore[arg-type]
    assert len(calls) == POLICY.attempts


def test_a_permanent_error_is_raised_at_once() -> None:
    """Not transient: one call, no sleep, the error unchanged."""
    sleeps: list[float] = []
    retrier = Retrier(POLICY, abort=threading.Event(), sleep=sleeps.append)
    calls, call = flaky(1, code="ValidationException")
    with pytest.raises(ClientError, match="ValidationException"):
        retrier("PutItem", call)  # type: ignore[arg-type]
    assert (len(calls), sleeps) == (1, [])


def test_the_first_attempts_time_counts_against_max_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A first attempt that used up `max_seconds` (a read timeout) is not retried."""
    clock = iter([0.0, POLICY.max_seconds + 1])  # before and after the first attempt
    monkeypatch.setattr(retry, "monotonic", lambda: next(clock, 100.0))
    retrier = Retrier(POLICY, abort=threading.Event(), sleep=lambda s: None)
    calls, call = flaky(100)
    with pytest.raises(ClientError):
        retrier("PutItem", call)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_a_first_attempt_success_gives_one_token_back() -> None:
    """The fast path keeps the retry budget's bookkeeping."""
    quota = RetryQuota(capacity=10)
    assert quota.acquire(client_error("ThrottlingException")) == 5
    retrier = Retrier(POLICY, abort=threading.Event(), quota=quota)
    assert retrier("PutItem", lambda: "ok") == "ok"
    assert quota.tokens == 6
