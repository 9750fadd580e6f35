"""DynamoDB helpers every table's code shares: item serialization, the timed and retried
write, condition failures, and the paged scan."""

from __future__ import annotations

import decimal
import functools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from boto3.dynamodb.types import DYNAMODB_CONTEXT
from botocore.exceptions import ClientError

from ecswatch.daemon.aws.errors import item_fault
from ecswatch.daemon.aws.retry import Retrier

T = TypeVar("T")


class UnstorableEventError(Exception):
    """DynamoDB can never accept this event: dead-letter it instead of retrying."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


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
    refusals of the item itself (size, empty names, ...: errors.item_fault) turned into
    UnstorableEventError, so every table's writer dead-letters them instead of waiting for the
    redrive policy. Every other error propagates: it is the world's (errors.systemic_reason)."""

    def timed() -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            observe_write(table, time.perf_counter() - started)

    try:
        return retrier(operation, timed)
    except ClientError as exc:
        message = item_fault(exc)
        if message is not None:
            # "Item size has exceeded the maximum allowed size" (400 KB; events reach 1 MiB)
            reason = "item_too_large" if "item size" in message.lower() else "rejected_by_dynamodb"
            raise UnstorableEventError(reason, message) from exc
        raise


def is_condition_failure(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


def scan(
    dynamodb: Any,
    table: str,
    fields: tuple[str, ...],
    *,
    where: str = "",
    names: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    retrier: Retrier | None = None,
) -> Iterator[dict[str, Any]]:
    """Every item (or those `where`, a FilterExpression over `names` and string `values`), only
    `fields`, plain Python values (numbers as decimal strings, maps and lists deep). Lazy: one
    page (at most 1 MB) is held at a time, so a caller that stops early reads no further. With
    a `retrier`, each page is retried on its own (one throttled page fails nothing)."""
    aliases = {f"#f{i}": name for i, name in enumerate(fields)}
    request: dict[str, Any] = {
        "TableName": table,
        "ProjectionExpression": ", ".join(aliases),  # GROUP and STATUS are reserved words
        "ExpressionAttributeNames": {**aliases, **(names or {})},
    }
    if where:
        request["FilterExpression"] = where
        request["ExpressionAttributeValues"] = {k: {"S": v} for k, v in (values or {}).items()}
    while True:
        call = functools.partial(dynamodb.scan, **request)
        page: dict[str, Any] = retrier("Scan", call) if retrier is not None else call()
        for raw in page.get("Items", []):
            yield plain_item(raw)
        if not page.get("LastEvaluatedKey"):
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def plain_item(raw: Mapping[str, Any]) -> dict[str, Any]:
    """An item in DynamoDB's wire format as plain values, as `scan` gives them."""
    return {name: _plain(value) for name, value in raw.items()}


def _plain(value: dict[str, Any]) -> Any:
    kind, inner = next(iter(value.items()))
    if kind == "M":
        return {name: _plain(v) for name, v in inner.items()}
    if kind == "L":
        return [_plain(v) for v in inner]
    return inner if kind in ("S", "BOOL") else (None if kind == "NULL" else str(inner))
