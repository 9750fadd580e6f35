"""Service state in DynamoDB (ECSServiceState): one conditional UpdateItem per event and one
de-duplication marker per event id (ECSServiceEventIds).

Correctness. State: the update applies only if the event sorts after the stored one of its
kind (`attribute_not_exists(k) OR k < :k`, one k per part of the state: impairment, deployment,
last other action), so the stored state is that of the latest event, whatever the order.
Counting: after the state write, one conditional PutItem (`attribute_not_exists`) of a marker
keyed `<service ARN>#<event id>`; PutItem is atomic per item (on moto too), so exactly one
writer's marker succeeds for each id, and only that writer counts the event. The state write
comes first: a crash between the two leaves the state applied and the id unmarked, and the
redelivery's state write is refused (equal key) while its marker succeeds and counts — once.
A marker that landed but whose reply was lost (a timeout) is retried: the retry's condition
fails on the very marker it wrote, which carries a `writer` id drawn once per `apply` (the
winning marker comes back with the failure), so it counts as landed; another writer's copy has
another id and stays a duplicate. A crash after the marker loses the count (docs/guarantees.md).
Expiry (domain.expiry, where each rule's argument is): markers by rule 2, so no marker expires
while a copy of its event could still be applied; service items by rule 3 (each applied state
write pushes `expiresAt` `idle_ttl_days` ahead), and by rule 4 no state write for an event
older than the service's `goneAt` (the reconciler found it deleted) applies.
Bound: the service item holds a fixed set of attributes (three sort keys, three reasons cut to
1,000 characters, names, ids, times): at most ~5 KB with 36-character EventBridge ids, ~1 KB
typical, whatever the number of events; a marker is ~160 bytes (its writer id included) and
lives event_ttl_days. So an event costs one UpdateItem of that item (1 WCU typical, 5 at
most) plus one 1-WCU PutItem.
The gauges and `report` leave out items past their `expiresAt` or found gone at once
(DynamoDB's TTL deletes within days).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.daemon.aws.retry import Retrier
from ecswatch.daemon.state.dynamo import is_condition_failure, write
from ecswatch.daemon.state.store import Outcome
from ecswatch.domain.expiry import GONE_AT, expires_after_window, idle_expires_at
from ecswatch.domain.services import ServiceEvent

SORT_KEY = {
    "impairment": "impairmentKey",
    "action": "lastActionKey",
    "deployment": "lastDeploymentKey",
}
# Newer than the stored event of its part of the state, and than the service's deletion (rule
# 4 of domain.expiry: a late event does not bring a deleted service back).
CONDITION = (
    "(attribute_not_exists(#key) OR #key < :key) AND (attribute_not_exists(#gone) OR #gone < :at)"
)
#: the marker's attribute naming the `apply` call that wrote it
WRITER = "writer"
#: the service item's size bound (see above); tests/integration/test_service_bounds.py holds to it
ITEM_BOUND_BYTES = 5 * 1024


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def update_request(table: str, event: ServiceEvent, expires_at: int | None) -> dict[str, Any]:
    """The single conditional UpdateItem that records `event` (no return values: none needed)."""
    values: dict[str, Any] = {
        ":key": _s(event.sort_key),
        ":cluster": _s(event.cluster),
        ":service": _s(event.service),
        ":at": _s(event.at),
        ":name": _s(event.event_name),
        ":reason": _s(event.reason),
    }
    sets = ["#key = :key", "clusterName = :cluster", "serviceName = :service"]
    if expires_at is not None:
        sets.append("expiresAt = :expires")
        values[":expires"] = {"N": str(expires_at)}
    if event.register == "impairment":
        sets += ["taskStartImpaired = :impaired", "impairedChangedAt = :at",
                 "impairmentEventName = :name", "impairmentReason = :reason"]  # fmt: skip
        values[":impaired"] = {"BOOL": bool(event.impaired)}
    elif event.register == "action":
        sets += ["lastEventName = :name", "lastEventType = :type", "lastActionAt = :at",
                 "lastActionReason = :reason"]  # fmt: skip
        values[":type"] = _s(event.event_type)
    else:
        sets += ["deploymentId = :deployment", "deploymentState = :state", "deploymentAt = :at",
                 "deploymentEventName = :name", "deploymentReason = :reason"]  # fmt: skip
        values[":deployment"] = _s(event.deployment_id)
        values[":state"] = _s(event.deployment_state)
    return {
        "TableName": table,
        "Key": {"serviceArn": _s(event.service_arn)},
        "UpdateExpression": f"SET {', '.join(sets)}",
        "ConditionExpression": CONDITION,
        "ExpressionAttributeNames": {"#key": SORT_KEY[event.register], "#gone": GONE_AT},
        "ExpressionAttributeValues": values,
    }


def marker_request(
    table: str, event: ServiceEvent, expires_at: int | None, writer: str = ""
) -> dict[str, Any]:
    """The PutItem that only the first writer of this event id gets through; `writer` tells
    that writer its own marker when the retry of a write whose reply was lost meets it."""
    item: dict[str, Any] = {"eventKey": _s(f"{event.service_arn}#{event.event_id}")}
    if writer:
        item[WRITER] = _s(writer)
    if expires_at is not None:
        item["expiresAt"] = {"N": str(expires_at)}
    return {
        "TableName": table,
        "Item": item,
        "ConditionExpression": "attribute_not_exists(eventKey)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


class ServiceStore:
    def __init__(
        self,
        client: Any,
        table: str,
        retrier: Retrier,
        *,
        event_table: str,
        event_ttl_days: int = 7,
        idle_ttl_days: int = 30,
        clock: Callable[[], float] = time.time,
        observe_write: Callable[[str, float], None] = lambda table, seconds: None,
    ) -> None:
        self._client = client
        self.table = table
        self.event_table = event_table
        self._retrier = retrier
        self._event_ttl_days = event_ttl_days
        self.idle_ttl_days = idle_ttl_days
        self._clock = clock
        self._observe_write = observe_write

    def apply(self, event: ServiceEvent) -> Outcome:
        """APPLIED: now the latest; STALE: older but new (count it); DUPLICATE: seen before."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        latest = self._record_state(event, idle_expires_at(now, self.idle_ttl_days))
        writer = uuid.uuid4().hex
        marker = marker_request(
            self.event_table,
            event,
            expires_after_window(now, event.at, self._event_ttl_days),
            writer,
        )
        try:
            self._write("PutItem", self.event_table, lambda: self._client.put_item(**marker))
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            if (exc.response.get("Item") or {}).get(WRITER) != {"S": writer}:
                return Outcome.DUPLICATE
        return Outcome.APPLIED if latest else Outcome.STALE

    def _record_state(self, event: ServiceEvent, expires_at: int | None) -> bool:
        """True when `event` is now the latest of its part of the state."""
        request = update_request(self.table, event, expires_at)
        try:
            self._write("UpdateItem", self.table, lambda: self._client.update_item(**request))
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _write(self, operation: str, table: str, call: Callable[[], object]) -> None:
        write(self._retrier, operation, table, call, self._observe_write)
