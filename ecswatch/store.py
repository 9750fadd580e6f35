"""DynamoDB: one conditional PutItem per event; the outcome comes from what DynamoDB returns.

Correctness: the write is `attribute_not_exists(key) OR version < :v`, atomic per item, so
whatever the interleaving of duplicates, reordering, replicas and redeliveries, an item only
ever moves to a higher version, and each version is *applied* by exactly one write. The item
it replaced (ReturnValues=ALL_OLD) and, on a failed condition, the item that won
(ReturnValuesOnConditionCheckFailure=ALL_OLD) tell us everything; we never read first.
"""

from __future__ import annotations

import decimal
import enum
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from boto3.dynamodb.types import DYNAMODB_CONTEXT
from botocore.exceptions import ClientError

from ecswatch import wire
from ecswatch.events import Event, Resource, may_be_failed_start
from ecswatch.retry import Retrier

T = TypeVar("T")

CONDITION = "attribute_not_exists(#key) OR #version < :version"
# DynamoDB's verdict that an item can never be written as it is (size, empty names, ...).
PERMANENT_CODES = frozenset({"ValidationException", "SerializationException"})


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class WriteResult:
    outcome: Outcome
    #: lastStatus of the item this write replaced (applied) or that beat it (duplicate/stale)
    other_status: str | None
    other_version: int | None


class UnstorableEventError(Exception):
    """DynamoDB can never accept this event: dead-letter it instead of retrying."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def classify_conflict(stored_version: int | None, event_version: int) -> Outcome:
    """A failed condition means the stored version is >= ours: equal is a duplicate."""
    if stored_version is None or stored_version > event_version:
        # No item in the error response (some emulators omit it): it can only be newer or equal,
        # and without an extra read "stale" is the conservative word.
        return Outcome.STALE
    return Outcome.DUPLICATE


def serialize_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """The item in DynamoDB's wire format; UnstorableEventError if it cannot be."""
    try:
        return {name: _attribute(value) for name, value in item.items()}
    except (TypeError, ValueError, decimal.DecimalException, RecursionError) as exc:
        raise UnstorableEventError(
            "unstorable", f"item cannot be represented in DynamoDB: {exc}"
        ) from exc


def _attribute(value: Any) -> dict[str, Any]:
    """boto3's TypeSerializer for the types JSON yields, without its generic dispatch: the write
    path's hottest function after botocore itself (same output, see tests/test_serialize.py)."""
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | decimal.Decimal):
        # DynamoDB numbers: 38 significant digits; the context traps anything it would round.
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    if isinstance(value, dict):
        return {"M": {k: _attribute(v) for k, v in value.items()}}
    if isinstance(value, list):
        return {"L": [_attribute(v) for v in value]}
    if value is None:
        return {"NULL": True}
    raise TypeError(f"unsupported type {type(value).__name__}")


def write(
    retrier: Retrier,
    operation: str,
    table: str,
    call: Callable[[], T],
    observe_write: Callable[[str, float], None],
) -> T:
    """One DynamoDB write: each attempt timed, transient errors retried, and DynamoDB's
    permanent refusals (size, empty names, ...) turned into UnstorableEventError, so every
    table's writer dead-letters them instead of waiting for the redrive policy."""

    def timed() -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            observe_write(table, time.perf_counter() - started)

    try:
        return retrier(operation, timed)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") in PERMANENT_CODES:
            message = str(error.get("Message") or error.get("Code"))
            raise UnstorableEventError("rejected_by_dynamodb", message) from exc
        raise


def is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class Store:
    """Applies events to their table; retries transient errors through `retrier`."""

    def __init__(
        self,
        client: Any,
        tables: Mapping[Resource, str],
        retrier: Retrier,
        *,
        observe_write: Callable[[str, float], None] = lambda table, seconds: None,
    ) -> None:
        self._put_item = wire.operation(client, "PutItem")  # the hot call: see wire.py
        self._tables = dict(tables)
        self._retrier = retrier
        self._observe_write = observe_write

    def apply(self, event: Event, item: Mapping[str, Any]) -> WriteResult:
        """One conditional PutItem, retried if transient. Raises UnstorableEventError."""
        table = self._tables[event.resource]
        request = {
            "TableName": table,
            "Item": serialize_item(item),
            "ConditionExpression": CONDITION,
            "ExpressionAttributeNames": {"#key": event.resource.key, "#version": "version"},
            "ExpressionAttributeValues": {":version": {"N": str(event.version)}},
            # The replaced item only matters to the PENDING→STOPPED rule; parsing it back for
            # every event cost ~0.3 ms of CPU, so ask for it only when it can decide a count.
            "ReturnValues": "ALL_OLD" if may_be_failed_start(event) else "NONE",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        try:
            response: dict[str, Any] = write(
                self._retrier,
                "PutItem",
                table,
                lambda: self._put_item(**request),
                self._observe_write,
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            stored = exc.response.get("Item")
            version = _number(stored, "version")
            return WriteResult(
                classify_conflict(version, event.version), _string(stored, "lastStatus"), version
            )
        old = response.get("Attributes")
        return WriteResult(Outcome.APPLIED, _string(old, "lastStatus"), _number(old, "version"))


def _string(item: Mapping[str, Any] | None, name: str) -> str | None:
    value = (item or {}).get(name)
    return value.get("S") if isinstance(value, dict) else None


def _number(item: Mapping[str, Any] | None, name: str) -> int | None:
    value = (item or {}).get(name)
    try:
        return int(value["N"]) if isinstance(value, dict) and "N" in value else None
    except ValueError:
        return None
