"""DynamoDB: one conditional PutItem per event; the outcome comes from what DynamoDB returns.

Correctness: the write is `attribute_not_exists(key) OR version < :v`, atomic per item, so
whatever the interleaving of duplicates, reordering, replicas and redeliveries, an item only
ever moves to a higher version, and each version is *applied* by exactly one write. The item
it replaced (ReturnValues=ALL_OLD) and, on a failed condition, the item that won
(ReturnValuesOnConditionCheckFailure=ALL_OLD) tell us everything; we never read first.

Counts (domain.deaths) follow the write: an applied write counts from the item it replaced. A
count another process left owed (`countOwedFrom`, see state.owed) is paid by the first daemon
write that meets it: a newer version replaces the whole item, flag included, and counts from
the owed state; the same version (a duplicate) is re-put under `version = :v AND
attribute_exists(countOwedFrom)` (a PutItem: atomic, also on moto), so exactly one payer wins.
Not over a reconciliation mark (`reconciledFrom`: STOPPED at that same version, ECS forgot the
task): re-putting the version's own state would bring the task back to life without expiry;
the owed count waits for the next version (its STOPPED event), which counts from the owed state.
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
from ecswatch.daemon.state.dynamo import is_condition_failure, write
from ecswatch.daemon.state.encoded import encode_item, send_encoded_items
from ecswatch.domain.deaths import OWED_FROM, OWED_STARTED, Before, before_of, needs_before
from ecswatch.domain.events import Event, Resource

T = TypeVar("T")

CONDITION = "attribute_not_exists(#key) OR #version < :version"
PAY_CONDITION = "#version = :version AND attribute_exists(#owed) AND attribute_not_exists(#marked)"
MARKED = "reconciledFrom"

# On a failed condition DynamoDB returns the whole winning item (there is no projection for
# ReturnValuesOnConditionCheckFailure), and botocore's parse of it cost ~0.2 ms of CPU per
# conflict: more than anything else ecswatch does per event, and the floor never pays it. The
# replaced item (ReturnValues=ALL_OLD, asked only when it can decide a count) costs the same.
# `apply` reads a few of their attributes, so a before-parse hook (botocore's own extension
# point) keeps only those before botocore parses the body. Only for the store's own requests:
# each carries TRIM (taken out before validation, kept in botocore's request context), and each
# attempt of a PutItem on the client says whether its answer is trimmed (request-created, then
# before-parse, on the same thread with no request between). A PutItem nested inside the
# store's (the reconciler's lease guard renews from botocore's before-call) or any other on the
# client gets the whole item as DynamoDB sent it.
KEPT = frozenset({"version", "lastStatus", "startedAt", "reconciledFrom", OWED_FROM, OWED_STARTED})
KEPT_ON_CONFLICT = KEPT
TRIM = "EcswatchTrimReturnedItem"
_attempt = threading.local()


def _take_trim(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    if params.pop(TRIM, False):
        context[TRIM] = True


def _arm_trim(request: Any, **_: Any) -> None:
    _attempt.trim = bool(getattr(request, "context", {}).get(TRIM))


def _trim_returned_item(response_dict: dict[str, Any], **_: Any) -> None:
    trim, _attempt.trim = getattr(_attempt, "trim", False), False
    if not trim:
        return
    body = response_dict.get("body")
    if not isinstance(body, bytes):
        return
    status = response_dict.get("status_code")
    if status == 400 and b"ConditionalCheckFailed" in body:
        key = "Item"
    elif status == 200 and b'"Attributes"' in body:
        key = "Attributes"
    else:
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # botocore reports what it can make of it
    item = data.get(key) if isinstance(data, dict) else None
    if isinstance(item, dict):
        data[key] = {k: v for k, v in item.items() if k in KEPT}
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
    #: set when this write must count (domain.deaths.task_counts): what it counts from
    count_from: Before | None = None


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
        hooks = (
            ("before-parameter-build", _take_trim),
            ("request-created", _arm_trim),
            ("before-parse", _trim_returned_item),
        )
        for event, hook in hooks:
            client.meta.events.register(
                f"{event}.dynamodb.PutItem", hook, unique_id=f"ecswatch-trim-{event}"
            )
        # Every client, validating or not, takes the pre-encoded Item: botocore validates the
        # empty placeholder it is handed (state/encoded.py). (A switch on
        # `client.meta.config.parameter_validation` read True for every client, since botocore
        # keeps that setting off meta.config, and sent every item the slow way.)
        send_encoded_items(client)
        self._tables = dict(tables)
        self._retrier = retrier
        self._observe_write = observe_write

    def apply(self, event: Event, item: Mapping[str, Any]) -> WriteResult:
        """One conditional PutItem, retried if transient. Raises UnstorableEventError."""
        counts = needs_before(event)
        request = self._request(event, item, CONDITION)
        # The replaced item only matters to the counting rules; parsing it back for every
        # event cost ~0.3 ms of CPU, so ask for it only when it can decide a count.
        request["ReturnValues"] = "ALL_OLD" if counts else "NONE"
        try:
            response = self._put(request)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            stored = exc.response.get("Item")
            version = _number(stored, "version")
            outcome = classify_conflict(version, event.version)
            paid = None
            if counts and outcome is Outcome.DUPLICATE and _owed_unmarked(stored):
                paid = self._pay(event, item)
            return WriteResult(outcome, _string(stored, "lastStatus"), version, paid)
        old = response.get("Attributes")
        before = before_of_item(old)
        return WriteResult(
            Outcome.APPLIED, before.status, _number(old, "version"), before if counts else None
        )

    def _pay(self, event: Event, item: Mapping[str, Any]) -> Before | None:
        """Re-put this same version where a count is still owed; the one that lands pays it."""
        request = self._request(event, item, PAY_CONDITION)
        request["ExpressionAttributeNames"].update({"#owed": OWED_FROM, "#marked": MARKED})
        request["ReturnValues"] = "ALL_OLD"
        try:
            response = self._put(request)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return None  # another replica paid it, a newer version did, or a mark came
        return before_of_item(response.get("Attributes"))

    def _request(self, event: Event, item: Mapping[str, Any], condition: str) -> dict[str, Any]:
        """A conditional PutItem of `item`; the caller adds names its condition uses beyond
        #key, #version and :version (DynamoDB refuses a name the condition does not use)."""
        names = {"#key": event.resource.key, "#version": "version"}
        return {
            "TableName": self._tables[event.resource],
            "Item": encode_item(item),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": {k: v for k, v in names.items() if k in condition},
            "ExpressionAttributeValues": {":version": {"N": str(event.version)}},
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            TRIM: True,
        }

    def _put(self, request: dict[str, Any]) -> dict[str, Any]:
        return write(
            self._retrier,
            "PutItem",
            request["TableName"],
            lambda: self._client.put_item(**request),
            self._observe_write,
        )

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


def before_of_item(item: Mapping[str, Any] | None) -> Before:
    """The counting view (domain.deaths.before_of) of an item in DynamoDB's wire format."""
    if not item:
        return Before()
    owed = _string(item, OWED_FROM)
    return before_of(
        _string(item, "lastStatus"),
        bool(_string(item, "startedAt")),
        reconciled_from=_string(item, MARKED),
        owed_from=owed,
        owed_started=owed is not None and (item.get(OWED_STARTED) or {}).get("BOOL") is True,
    )


def _owed_unmarked(item: Mapping[str, Any] | None) -> bool:
    return OWED_FROM in (item or {}) and MARKED not in (item or {})


def _string(item: Mapping[str, Any] | None, name: str) -> str | None:
    value = (item or {}).get(name)
    return value.get("S") if isinstance(value, dict) else None


def _number(item: Mapping[str, Any] | None, name: str) -> int | None:
    value = (item or {}).get(name)
    try:
        return int(value["N"]) if isinstance(value, dict) and "N" in value else None
    except ValueError:
        return None
