"""The service gauges' journal: what each replica applied lately, so the others need not rescan
the service table to see it.

Why (issue "scale"): every replica used to rescan the whole service table every 30 s. Scan is
charged on the size of every item read (summed per page, in 4 KB units, halved when eventually
consistent), whatever the projection: at 5,000 services of ~1 KB that is ~625 RCU a rescan, ~21
RCU/s per replica. Now a replica rescans every 10 refreshes (the safety net, and the way counts
and expiries arrive) and learns of the other replicas' service events from this journal.

Layout: a ring of SLOTS items in the service table, keyed `ecswatch:journal:<bucket % SLOTS>`
(never a service ARN: readers of the table skip them, domain.services.is_service_key). A bucket
is `bucket_seconds` of wall-clock time; its slot item holds the bucket number and one attribute
per (writer, part, service): `<writer>/<i|d>/<service ARN>` = {k: sort key, v: value, c, s}.
Writers (each replica, for the changes it applied, batched) add their attributes with an
UpdateItem conditioned on `bucket = :b`; a slot still holding an older bucket is replaced by a
PutItem conditioned on `attribute_not_exists OR bucket < :b`. Per-item writes are atomic on
DynamoDB (the emulator serializes UpdateItem, which moto does not make atomic), and writers never
share an attribute name, so no entry overwrites another replica's. Readers read each bucket
once, `bucket_seconds / 2` after it ends (the margin covers a late flush and clock skew), with
one eventually consistent GetItem: ~0.5 RCU per bucket while the journal is small.

What it does not promise: an entry written after the readers read its bucket (a flush stalled
longer than the margin), a batch past DynamoDB's 400 KB item (over ~1,000 services changing in
one bucket), or a crash between the state write and the flush, is missed by the journal; the
next rescan (at most 10 refreshes later) brings every replica to the stored state anyway. Every
entry carries its event's sort key, so applying one late or twice never undoes a newer one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog
from botocore.exceptions import ClientError

from ecswatch.daemon.state.dynamo import is_condition_failure
from ecswatch.domain.services import GaugeChange

log = structlog.get_logger("ecswatch.daemon.state.service_journal")

PREFIX = "ecswatch:journal:"
SLOTS = 16
UPDATE_CHUNK = 100  # entries per UpdateItem: keeps the SET expression under DynamoDB's 4 KB
PARTS = {"impairment": "i", "deployment": "d"}
REGISTERS = {code: register for register, code in PARTS.items()}
EXPIRES_AFTER_SECONDS = 3600  # slots are reused; TTL only tidies a ring nobody writes any more


class ServiceJournal:
    """Publishes this replica's gauge changes into the current bucket; reads a bucket's."""

    def __init__(
        self,
        client: Any,
        table: str,
        *,
        writer: str,
        bucket_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._writer = writer
        self.bucket_seconds = bucket_seconds
        self._clock = clock

    def bucket(self, at: float | None = None) -> int:
        return int((self._clock() if at is None else at) // self.bucket_seconds)

    def _key(self, bucket: int) -> dict[str, Any]:
        return {"serviceArn": {"S": f"{PREFIX}{bucket % SLOTS}"}}

    def publish(self, changes: list[GaugeChange]) -> bool:
        """Add `changes` (the latest per service and part) to the current bucket; False when
        they could not be (the rescan will bring them)."""
        bucket = self.bucket()
        entries = {
            f"{self._writer}/{PARTS[c.register]}/{c.service_arn}": {
                "M": {
                    field: {"S": value}
                    for field, value in (
                        ("k", c.key),
                        ("v", c.value),
                        ("c", c.cluster),
                        ("s", c.service),
                    )
                }
            }
            for c in changes
        }
        try:
            for start in range(0, len(entries), UPDATE_CHUNK):
                chunk = dict(list(entries.items())[start : start + UPDATE_CHUNK])
                if not self._add(bucket, chunk):
                    self._create(bucket, chunk)  # first of its bucket: replace the old slot
        except ClientError as exc:
            log.warning(
                "service_journal_publish_failed",
                error=exc.response.get("Error", {}).get("Code"),
                changes=len(changes),
            )
            return False
        return True

    def _add(self, bucket: int, entries: dict[str, Any]) -> bool:
        names = {f"#e{i}": name for i, name in enumerate(entries)}
        values: dict[str, Any] = {f":e{i}": value for i, value in enumerate(entries.values())}
        try:
            self._client.update_item(
                TableName=self._table,
                Key=self._key(bucket),
                UpdateExpression="SET " + ", ".join(f"#e{i} = :e{i}" for i in range(len(names))),
                ConditionExpression="#bucket = :bucket",
                ExpressionAttributeNames={**names, "#bucket": "bucket"},
                ExpressionAttributeValues={**values, ":bucket": {"N": str(bucket)}},
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return False
            raise
        return True

    def _create(self, bucket: int, entries: dict[str, Any]) -> None:
        expires = int((bucket + 1) * self.bucket_seconds) + EXPIRES_AFTER_SECONDS
        item = {
            **self._key(bucket),
            "bucket": {"N": str(bucket)},
            "expiresAt": {"N": str(expires)},
            **entries,
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(serviceArn) OR #bucket < :bucket",
                ExpressionAttributeNames={"#bucket": "bucket"},
                ExpressionAttributeValues={":bucket": {"N": str(bucket)}},
            )
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            # Another writer opened this bucket between our two writes (or the slot holds a
            # newer one: our clock is far behind, and the entry waits for the rescan).
            self._add(bucket, entries)

    def read(self, bucket: int) -> list[GaugeChange]:
        """Every writer's changes in `bucket` (none if its slot holds another bucket)."""
        item = self._client.get_item(TableName=self._table, Key=self._key(bucket)).get("Item")
        if not item or item.get("bucket", {}).get("N") != str(bucket):
            return []
        changes = []
        for name, value in item.items():
            parts = name.split("/", 2)
            if len(parts) != 3 or parts[1] not in REGISTERS or "M" not in value:
                continue  # the slot's own attributes
            entry = {field: inner.get("S", "") for field, inner in value["M"].items()}
            changes.append(
                GaugeChange(
                    service_arn=parts[2],
                    cluster=entry.get("c", ""),
                    service=entry.get("s", ""),
                    register=REGISTERS[parts[1]],
                    key=entry.get("k", ""),
                    value=entry.get("v", ""),
                )
            )
        return changes
