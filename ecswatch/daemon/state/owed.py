"""The writes of a process that exports no metrics (`ecswatch reconcile --apply`): a count the
write should make is left on the item as owed, for the next daemon to pay (state.store).

Exactly once, whoever gets there first: the command reads the item, and writes only if it is
still exactly what it read (`version = :read` and the owed flag as read: a PutItem, atomic), so
it owes precisely what its own write would have counted (domain.deaths, from the state before
it, an earlier owed state included). A daemon's write then pays it once: a newer version
replaces the item and counts from the owed state; the same version is re-put under
`attribute_exists(countOwedFrom)`, which one writer only can win (not over a reconciliation
mark: the next version pays then). A pay between the command's read and write makes its
condition fail, and it reads again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.daemon.state.dynamo import is_condition_failure
from ecswatch.daemon.state.store import KEPT, Outcome, Store, WriteResult, before_of_item
from ecswatch.domain.deaths import OWED_FROM, OWED_STARTED, task_counts
from ecswatch.domain.events import Event, Resource

#: reads and conditional writes before giving up on an item other writers keep changing; then
#: the item has moved on without us, and owing nothing is the answer that never double counts
MAX_ATTEMPTS = 8


class OwingStore(Store):
    """A Store for processes without metrics: task writes owe their counts instead."""

    def apply(self, event: Event, item: Mapping[str, Any]) -> WriteResult:
        if event.resource is not Resource.TASK:
            return super().apply(event, item)
        for _ in range(MAX_ATTEMPTS):
            stored = self._read(event)
            version = _version(stored)
            if stored is not None and (version is None or version >= event.version):
                status = (stored.get("lastStatus") or {}).get("S")
                outcome = Outcome.DUPLICATE if version == event.version else Outcome.STALE
                return WriteResult(outcome, status, version)  # (no version: never replaced)
            before = before_of_item(stored)
            owes = task_counts(event, before) is not None
            full = dict(item)
            if owes:
                full[OWED_FROM], full[OWED_STARTED] = before.status or "", before.started
            try:
                self._put(self._exactly(event, full, stored))
            except ClientError as exc:
                if not is_condition_failure(exc):
                    raise
                continue  # it changed since we read it: read again
            return WriteResult(Outcome.APPLIED, before.status, version)
        return WriteResult(Outcome.STALE, None, None)

    def _read(self, event: Event) -> dict[str, Any] | None:
        names = {f"#a{i}": name for i, name in enumerate(sorted(KEPT))}
        response = self._retrier(
            "GetItem",
            lambda: self._client.get_item(
                TableName=self._tables[event.resource],
                Key={event.resource.key: {"S": event.arn}},
                ConsistentRead=True,
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
            ),
        )
        item = response.get("Item")
        return item if isinstance(item, dict) else None

    def _exactly(
        self, event: Event, item: Mapping[str, Any], stored: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The PutItem of `item` that lands only on the item as it was read."""
        owed = (stored or {}).get(OWED_FROM)
        if stored is None:
            condition = "attribute_not_exists(#key)"
        elif owed is None:
            condition = "#version = :version AND attribute_not_exists(#owed)"
        else:
            condition = "#version = :version AND #owed = :owed"
        request = self._request(event, item, condition)
        request["ReturnValues"] = "NONE"
        values = request["ExpressionAttributeValues"]
        if stored is None:
            del request["ExpressionAttributeValues"]  # DynamoDB refuses unused values
            return request
        request["ExpressionAttributeNames"]["#owed"] = OWED_FROM
        values[":version"] = stored["version"]
        if owed is not None:
            values[":owed"] = owed
        return request


def _version(item: Mapping[str, Any] | None) -> int | None:
    value = (item or {}).get("version")
    try:
        return int(value["N"]) if isinstance(value, dict) and "N" in value else None
    except ValueError:
        return None
