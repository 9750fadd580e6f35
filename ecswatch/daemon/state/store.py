"""DynamoDB: one conditional PutItem per event; the outcome comes from what DynamoDB returns.

Correctness: the write is `attribute_not_exists(key) OR version < :v`, atomic per item, so
whatever the interleaving of duplicates, reordering, replicas and redeliveries, an item only
ever moves to a higher version, and each version is *applied* by exactly one write. The item
it replaced (ReturnValues=ALL_OLD) and, on a failed condition, the item that won
(ReturnValuesOnConditionCheckFailure=ALL_OLD) tell us everything; we never read first.
"""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from ecswatch.daemon.aws.retry import Retrier
from ecswatch.daemon.state.dynamo import (
    encode_item,
    is_condition_failure,
    send_encoded_items,
    write,
)
from ecswatch.domain.events import Event, Resource, may_be_failed_start

T = TypeVar("T")

CONDITION = "attribute_not_exists(#key) OR #version < :version"

# On a failed condition DynamoDB returns the whole winning item (there is no projection for
# ReturnValuesOnConditionCheckFailure), and botocore's parse of it cost ~0.2 ms of CPU per
# conflict: more than anything else ecswatch does per event, and the floor never pays it.
# `apply` reads two of its attributes, so a before-parse hook (botocore's own extension point)
# keeps only those before botocore parses the body. Only for the store's own calls: a
# thread-local flag, since botocore runs hooks on the calling thread; every other PutItem on
# the same client (the reconciler's lease) gets the whole item as DynamoDB sent it.
KEPT_ON_CONFLICT = frozenset({"version", "lastStatus"})
_trimming = threading.local()


def _trim_conflict_item(response_dict: dict[str, Any], **_: Any) -> None:
    if not getattr(_trimming, "on", False) or response_dict.get("status_code") != 400:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes) or b"ConditionalCheckFailed" not in body:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # botocore reports what it can make of it
    item = data.get("Item") if isinstance(data, dict) else None
    if isinstance(item, dict):
        data["Item"] = {k: v for k, v in item.items() if k in KEPT_ON_CONFLICT}
        response_dict["body"] = json.dumps(data).encode()


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


def classify_conflict(stored_version: int | None, event_version: int) -> Outcome:
    """A failed condition means the stored version is >= ours: equal is a duplicate."""
    if stored_version is None or stored_version > event_version:
        # No item in the error response (some emulators omit it): it can only be newer or equal,
        # and without an extra read "stale" is the conservative word.
        return Outcome.STALE
    return Outcome.DUPLICATE


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
        self._client = client
        client.meta.events.register(
            "before-parse.dynamodb.PutItem", _trim_conflict_item, unique_id="ecswatch-trim"
        )
        send_encoded_items(client)
        self._tables = dict(tables)
        self._retrier = retrier
        self._observe_write = observe_write

    def apply(self, event: Event, item: Mapping[str, Any]) -> WriteResult:
        """One conditional PutItem, retried if transient. Raises UnstorableEventError."""
        table = self._tables[event.resource]
        request = {
            "TableName": table,
            "Item": encode_item(item),
            "ConditionExpression": CONDITION,
            "ExpressionAttributeNames": {"#key": event.resource.key, "#version": "version"},
            "ExpressionAttributeValues": {":version": {"N": str(event.version)}},
            # The replaced item only matters to the PENDING→STOPPED rule; parsing it back for
            # every event cost ~0.3 ms of CPU, so ask for it only when it can decide a count.
            "ReturnValues": "ALL_OLD" if may_be_failed_start(event) else "NONE",
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }
        _trimming.on = True
        try:
            response: dict[str, Any] = write(
                self._retrier,
                "PutItem",
                table,
                lambda: self._client.put_item(**request),
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
        finally:
            _trimming.on = False
        old = response.get("Attributes")
        # A reconciler's mark (drift.py) is not a STOPPED event: the rule sees the status before it.
        replaced = _string(old, "reconciledFrom") or _string(old, "lastStatus")
        return WriteResult(Outcome.APPLIED, replaced, _number(old, "version"))

    def update(self, resource: Resource, request: dict[str, Any]) -> None:
        """One UpdateItem on `resource`'s table (the reconciler's marks), timed and retried."""
        table = self._tables[resource]
        write(
            self._retrier,
            "UpdateItem",
            table,
            lambda: self._client.update_item(TableName=table, **request),
            self._observe_write,
        )


def _string(item: Mapping[str, Any] | None, name: str) -> str | None:
    value = (item or {}).get(name)
    return value.get("S") if isinstance(value, dict) else None


def _number(item: Mapping[str, Any] | None, name: str) -> int | None:
    value = (item or {}).get(name)
    try:
        return int(value["N"]) if isinstance(value, dict) and "N" in value else None
    except ValueError:
        return None
