"""BatchGetItem's UnprocessedKeys (read throttling) are sent again after a backoff, never hot."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from ecswatch.config import Config
from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.reconcile.drift import TASKS, Pass
from ecswatch.daemon.reconcile.ecs import Stopping
from ecswatch.daemon.reconcile.reads import UNPROCESSED, UnprocessedKeysError

TABLE = Config().dynamodb.task_table
ARNS = [f"arn:aws:ecs:us-east-1:123456789012:task/prod/{n}" for n in range(3)]


class Stop(threading.Event):
    """Records every backoff instead of sleeping; `stop_at` sets it on that wait."""

    def __init__(self, stop_at: int = 0) -> None:
        super().__init__()
        self.waits: list[float] = []
        self._stop_at = stop_at

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout or 0.0)
        if len(self.waits) == self._stop_at:
            self.set()
        return self.is_set()


class ThrottledReads:
    """A DynamoDB that answers one key per BatchGetItem and leaves the rest unprocessed."""

    def __init__(self, limit: int = 50) -> None:
        self.calls = 0
        self._limit = limit

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        assert self.calls <= self._limit, "a hot loop"
        keys = RequestItems[TABLE]["Keys"]
        found = [{"taskArn": keys[0]["taskArn"], "version": {"N": "2"}}]
        rest = {TABLE: {**RequestItems[TABLE], "Keys": keys[1:]}} if keys[1:] else {}
        return {"Responses": {TABLE: found}, "UnprocessedKeys": rest}


def stored_versions(dynamodb: ThrottledReads, stop: Stop) -> dict[str, tuple[int, bool]]:
    retrier = Retrier(WRITE, abort=stop)
    drift = Pass(None, dynamodb, None, Config(), retrier, apply=False, stop=stop)  # type: ignore[arg-type]
    return drift._stored_versions(TASKS, ARNS)


def test_unprocessed_keys_are_sent_again_after_a_backoff() -> None:
    """Each re-send of the unprocessed rest waits first (full jitter, growing cap)."""
    dynamodb, stop = ThrottledReads(), Stop()
    assert stored_versions(dynamodb, stop) == dict.fromkeys(ARNS, (2, False))
    assert dynamodb.calls == 3
    assert len(stop.waits) == 2
    assert all(0 <= w <= UNPROCESSED.initial_wait * 2**n for n, w in enumerate(stop.waits, 1))


def test_a_stop_during_the_backoff_ends_the_reads() -> None:
    """The backoff waits on the reconciler's stop: stopping ends the pass at once."""
    dynamodb, stop = ThrottledReads(), Stop(stop_at=1)
    with pytest.raises(Stopping):
        stored_versions(dynamodb, stop)
    assert dynamodb.calls == 1


def test_keys_left_unprocessed_every_time_fail_the_pass_after_the_policy_attempts() -> None:
    """Throttled for good: a bounded number of sends, then an error (the next pass tries)."""
    many = [f"{ARNS[0]}-{n}" for n in range(50)]
    dynamodb, stop = ThrottledReads(), Stop()
    retrier = Retrier(WRITE, abort=stop)
    drift = Pass(None, dynamodb, None, Config(), retrier, apply=False, stop=stop)  # type: ignore[arg-type]
    with pytest.raises(UnprocessedKeysError):
        drift._stored_versions(TASKS, many)
    assert dynamodb.calls == UNPROCESSED.attempts
