"""The conditional write against moto's DynamoDB: outcomes come from what DynamoDB returns."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import Retrier, RetryPolicy
from ecswatch.daemon.reconcile.ecs import Stopping
from ecswatch.daemon.reconcile.guard import LeaseGuard
from ecswatch.daemon.reconcile.lease import Lease
from ecswatch.daemon.state.dynamo import UnstorableEventError
from ecswatch.daemon.state.store import TRIM, Outcome, Store
from ecswatch.domain.events import Event, Resource, build_item, parse_message
from tests.conftest import Stack

ARN = "arn:aws:ecs:us-east-1:1:task/prod/t1"
NOW = datetime(2026, 11, 23, tzinfo=UTC)


def event(version: int, status: str = "RUNNING", raw: str = "", **extra: Any) -> Event:
    """A parsed event; `raw` is spliced verbatim into the detail (numbers JSON can't round-trip)."""
    detail = {"taskArn": ARN, "version": version, "lastStatus": status, **extra}
    detail_json = json.dumps(detail)
    if raw:
        detail_json = detail_json[:-1] + ", " + raw + "}"
    parsed = parse_message(
        f'{{"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {detail_json}}}'
    )
    assert isinstance(parsed, Event)
    return parsed


class Recorder:
    """Records retries and backoff sleeps instead of sleeping; can heal the fault mid-way."""

    def __init__(self, heal: Callable[[], None] | None = None, heal_after: int = 0) -> None:
        self.sleeps: list[float] = []
        self.retries: list[str] = []
        self._heal = heal
        self._heal_after = heal_after

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self._heal is not None and len(self.sleeps) == self._heal_after:
            self._heal()


def make_store(stack: Stack, recorder: Recorder, table: str | None = None) -> Store:
    client = make_client("dynamodb", stack.config.aws)
    retrier = Retrier(
        RetryPolicy(attempts=4, max_seconds=60),
        abort=threading.Event(),
        on_retry=recorder.retries.append,
        sleep=recorder.sleep,
    )
    tables = {
        Resource.TASK: table or stack.config.dynamodb.task_table,
        Resource.CONTAINER_INSTANCE: stack.config.dynamodb.container_instance_table,
    }
    return Store(client, tables, retrier)


def apply(store: Store, e: Event) -> Any:
    return store.apply(e, build_item(e, now=NOW, stopped_task_ttl_days=7))


def test_first_write_applies_and_reports_no_previous_item(stack: Stack) -> None:
    result = apply(make_store(stack, Recorder()), event(1, "PENDING"))
    assert result.outcome is Outcome.APPLIED
    assert result.other_status is None


def test_newer_version_applies_and_returns_the_replaced_status(stack: Stack) -> None:
    store = make_store(stack, Recorder())
    apply(store, event(2, "PENDING"))
    result = apply(store, event(3, "STOPPED"))
    assert (result.outcome, result.other_status, result.other_version) == (
        Outcome.APPLIED,
        "PENDING",
        2,
    )


def test_same_version_is_a_duplicate_and_lower_is_stale(stack: Stack) -> None:
    store = make_store(stack, Recorder())
    apply(store, event(5))
    duplicate = apply(store, event(5))
    stale = apply(store, event(4, "PENDING"))
    assert (duplicate.outcome, duplicate.other_version) == (Outcome.DUPLICATE, 5)
    assert (stale.outcome, stale.other_status) == (Outcome.STALE, "RUNNING")
    item = stack.task_items()[ARN]
    assert (item["version"], item["lastStatus"]) == (5, "RUNNING")


def test_numbers_beyond_dynamodb_precision_are_unstorable(stack: Stack) -> None:
    store = make_store(stack, Recorder())
    with pytest.raises(UnstorableEventError) as excinfo:
        apply(store, event(1, raw='"ratio": 1.0000000000000000000000000000000000000001'))
    assert excinfo.value.reason == "unstorable"


def test_throttling_is_retried_with_backoff_then_applied(stack: Stack) -> None:
    stack.emulator.faults.throttle_share = 1.0
    recorder = Recorder(heal=stack.emulator.faults.reset, heal_after=2)
    store = make_store(stack, recorder)
    assert apply(store, event(1)).outcome is Outcome.APPLIED
    assert recorder.retries == ["PutItem", "PutItem"]
    assert all(0 <= s <= 5 for s in recorder.sleeps)


def test_throttling_past_the_policy_raises_for_redelivery(stack: Stack) -> None:
    stack.emulator.faults.throttle_share = 1.0
    recorder = Recorder()
    with pytest.raises(ClientError) as excinfo:
        apply(make_store(stack, recorder), event(1))
    assert excinfo.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert len(recorder.retries) == 3  # four attempts
    stack.emulator.faults.reset()


def test_a_missing_table_is_not_retried(stack: Stack) -> None:
    recorder = Recorder()
    with pytest.raises(ClientError) as excinfo:
        apply(make_store(stack, recorder, table="NoSuchTable"), event(1))
    assert excinfo.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert recorder.retries == []


def test_only_the_stores_own_conflicts_are_trimmed_to_what_it_reads(stack: Stack) -> None:
    """The store's conflict answer keeps version and lastStatus; another caller of the same
    client (the reconciler's lease) still gets the whole winning item."""
    store = make_store(stack, Recorder())
    apply(store, event(5))
    client = store._client
    table = stack.config.dynamodb.task_table
    with pytest.raises(ClientError) as caught:
        client.put_item(
            TableName=table,
            Item={"taskArn": {"S": ARN}, "version": {"N": "1"}},
            ConditionExpression="attribute_not_exists(taskArn)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    whole = caught.value.response["Item"]
    assert {"taskArn", "version", "lastStatus", "eventId", "writtenAt"} <= set(whole)
    with pytest.raises(ClientError) as trimmed:  # the store's own request, marked as it marks
        client.put_item(
            TableName=table,
            Item={"taskArn": {"S": ARN}, "version": {"N": "1"}},
            ConditionExpression="attribute_not_exists(taskArn)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **{TRIM: True},
        )
    assert set(trimmed.value.response["Item"]) == {"version", "lastStatus"}
    assert apply(store, event(5)).outcome is Outcome.DUPLICATE


def test_a_lease_renewal_inside_a_store_write_reads_the_whole_lease_item(stack: Stack) -> None:
    """The reconciler's guard renews its lease from inside the store's PutItem (botocore's
    before-call, same client, same thread): that nested PutItem's answer is not trimmed, so a
    refused renewal still sees who holds the lease and its token."""
    store = make_store(stack, Recorder())
    client = store._client
    table = stack.config.dynamodb.service_table
    other = Lease(make_client("dynamodb", stack.config.aws), table, "other", 60)
    assert other.renew()
    mine = Lease(client, table, "me", 60)
    guard = LeaseGuard(mine, threading.Event(), lambda: None)
    guard.watch(client)
    with guard.active(), pytest.raises(Stopping):
        apply(store, event(5, "STOPPED"))  # the guard renews first: refused, so it stops
    assert (mine.state.owner, mine.state.token) == ("other", other.token)
    assert mine.state.expires_at > time.time()
