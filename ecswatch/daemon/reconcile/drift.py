"""One reconciliation pass: compare what the ECS API reports with the tables, and fix the drift.

Correctness — a reconciliation write never hides a real event:
- A task or container instance ECS reports goes through Store.apply, the events' own write
  (`attribute_not_exists(key) OR version < :v`) at the API's `version` (the version ECS puts in
  the event of that state): it lands only where the table lacks the resource or is behind; the
  real event of that version is then a duplicate, and any newer event still wins.
- One the table shows alive but ECS no longer has is *marked* at its stored version (UpdateItem
  `version = :stored AND status = :seen`): the version stays, so its real STOPPED event
  (stored + 1 or more) is still applied with its stopCode, and Store reads `reconciledFrom` so
  the PENDING→STOPPED rule sees the status before the mark.
- Counts ride on the writes (domain.deaths, one path for event, pass and command): a pass's
  applied write counts through `on_count` as its event would have (account and region from the
  ARN, as events have them); a version `ecswatch reconcile --apply` wrote with its count owed
  (state.owed) is re-put here at that version to pay it, once (state.store).
- Only items of the clusters ECS lists to these credentials are candidates, matched on the full
  cluster ARN (account and region included): other accounts' and regions' items are never touched.
Memory: resources are described, compared and written 100 at a time; a pass holds only the ARNs
ECS listed for its clusters (~150 bytes each) and the few vanish candidates.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.config import Config
from ecswatch.daemon.aws.retry import Retrier
from ecswatch.daemon.reconcile.ecs import PAGE_SIZE, EcsApi
from ecswatch.daemon.reconcile.reads import batch_get
from ecswatch.daemon.state.dynamo import is_condition_failure, scan
from ecswatch.daemon.state.store import Outcome, Store, WriteResult
from ecswatch.domain import expiry
from ecswatch.domain.arns import account_region
from ecswatch.domain.deaths import OWED_FROM, Before
from ecswatch.domain.events import (
    CONTAINER_INSTANCE_STATE_CHANGE,
    TASK_STATE_CHANGE,
    Event,
    Resource,
    build_item,
    redact_environment,
)

RECONCILE_EVENT_ID = "ecswatch-reconcile"
GONE_REASON = "ecswatch reconcile: ECS no longer knows this resource"
ADDED, CAUGHT_UP, MARKED_STOPPED = "added", "caught_up", "marked_stopped"
FIX_KINDS = (ADDED, CAUGHT_UP, MARKED_STOPPED)


@dataclass(frozen=True, slots=True)
class Kind:
    """How one resource kind is listed, described and stored."""

    resource: Resource
    label: str  # metric label
    detail_type: str
    status_field: str
    gone_status: str
    list_operation: str
    list_key: str
    list_filters: tuple[dict[str, str], ...]
    describe_operation: str
    describe_param: str
    describe_key: str


TASKS = Kind(
    Resource.TASK, "task", TASK_STATE_CHANGE, "lastStatus", "STOPPED",
    "ListTasks", "taskArns", ({"desiredStatus": "RUNNING"}, {"desiredStatus": "STOPPED"}),
    "DescribeTasks", "tasks", "tasks",
)  # fmt: skip
CONTAINER_INSTANCES = Kind(
    Resource.CONTAINER_INSTANCE, "container_instance", CONTAINER_INSTANCE_STATE_CHANGE, "status",
    "INACTIVE", "ListContainerInstances", "containerInstanceArns", ({},),
    "DescribeContainerInstances", "containerInstances", "containerInstances",
)  # fmt: skip
KINDS = (TASKS, CONTAINER_INSTANCES)


@dataclass(frozen=True, slots=True)
class Fix:
    kind: str  # added | caught_up | marked_stopped
    resource: Kind
    arn: str
    cluster_arn: str
    version: int
    status: str
    stored_version: int | None = None
    event: Event | None = None  # the write of added / caught_up

    def __str__(self) -> str:
        was = "" if self.stored_version is None else f" (table: {self.stored_version})"
        return f"{self.kind:<14} {self.arn}  version {self.version}{was}  {self.status}"


@dataclass
class Tally:
    """What one pass found and did."""

    fixes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIX_KINDS, 0))
    written: dict[str, int] = field(default_factory=dict)
    skipped_without_version: int = 0


def jsonable(value: Any) -> Any:
    """API answers as event details: ISO strings for datetimes, Decimals for floats."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


class Pass:
    """Finds the drift of the given clusters; writes the fixes unless `apply` is False.

    `on_fix(fix, result)` sees every fix (result None in a dry run or for a refused mark);
    `checkpoint()` runs between calls and raises ecs.Stopping to abandon the pass.
    """

    def __init__(
        self,
        api: EcsApi,
        dynamodb: Any,
        store: Store,
        config: Config,
        read_retrier: Retrier,
        *,
        apply: bool,
        on_fix: Callable[[Fix, WriteResult | None], None] = lambda fix, result: None,
        on_count: Callable[[Event, Before], None] = lambda event, before: None,
        checkpoint: Callable[[], None] = lambda: None,
        stop: threading.Event | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._dynamodb = dynamodb
        self._store = store
        self._config = config
        self._tables = config.dynamodb.state_tables()
        self._read = read_retrier
        self._apply = apply
        self._on_fix = on_fix
        self._on_count = on_count
        self._checkpoint = checkpoint
        self._stop = stop or threading.Event()
        self._now = now
        self.tally = Tally()

    def run(self, clusters: list[str]) -> list[str]:
        """Reconcile `clusters` (names or ARNs; empty: all); returns the cluster ARNs done."""
        arns = self._api.cluster_arns(clusters)
        for kind in KINDS:
            listed = {cluster: self._sync(kind, cluster) for cluster in arns}
            self._mark_vanished(kind, listed)
        return arns

    def _sync(self, kind: Kind, cluster: str) -> set[str]:
        """Every resource ECS lists in `cluster` written where the table lacks it or is behind."""
        seen: set[str] = set()
        for filters in kind.list_filters:
            for page in self._api.pages(
                kind.list_operation, kind.list_key, cluster=cluster, **filters
            ):
                seen.update(page)
                for start in range(0, len(page), PAGE_SIZE):  # a page can exceed maxResults
                    self._checkpoint()
                    batch = page[start : start + PAGE_SIZE]
                    self._compare(kind, cluster, self._describe(kind, cluster, batch))
        return seen

    def _describe(self, kind: Kind, cluster: str, arns: list[str]) -> list[dict[str, Any]]:
        if not arns:
            return []
        response = self._api.call(
            kind.describe_operation, cluster=cluster, **{kind.describe_param: arns}
        )
        return list(response.get(kind.describe_key, []))

    def _compare(self, kind: Kind, cluster: str, described: list[dict[str, Any]]) -> None:
        key = kind.resource.key
        stored = self._stored_versions(kind, [d[key] for d in described if d.get(key)])
        for resource in described:
            arn, version = resource.get(key), resource.get("version")
            if not isinstance(arn, str):
                continue
            if not isinstance(version, int) or isinstance(version, bool):
                # Real ECS always gives one; without it a write could not be ordered with events.
                self.tally.skipped_without_version += 1
                continue
            have, owed = stored.get(arn, (None, False))
            if have is not None and (have > version or (have == version and not owed)):
                continue
            detail = jsonable(resource)
            if self._config.events.redact_environment:
                redact_environment(detail)
            now = self._now()
            account, region = account_region(arn)
            event = Event(
                kind.resource, kind.detail_type, arn, version, RECONCILE_EVENT_ID,
                now.isoformat(), detail, account, region,
            )  # fmt: skip
            if have == version:  # its count is owed: the write pays it (not a fix)
                if self._apply:
                    self._write(event, now)
                continue
            fix = Fix(
                ADDED if have is None else CAUGHT_UP, kind, arn, cluster, version,
                str(resource.get(kind.status_field, "")), have, event,
            )  # fmt: skip
            self._record(fix, self._write(event, now) if self._apply else None)

    def _write(self, event: Event, now: datetime) -> WriteResult:
        item = build_item(
            event, now=now, stopped_task_ttl_days=self._config.dynamodb.stopped_task_ttl_days
        )
        item["reconciledAt"] = item["writtenAt"]
        result = self._store.apply(event, item)
        if result.count_from is not None:
            self._on_count(event, result.count_from)
        return result

    def _stored_versions(self, kind: Kind, arns: list[str]) -> dict[str, tuple[int, bool]]:
        """arn -> (stored version, a count is owed), by BatchGetItem (at most 100 keys, as
        DescribeTasks gives)."""
        if not arns:
            return {}
        table, key = self._tables[kind.resource], kind.resource.key
        request = {
            "Keys": [{key: {"S": arn}} for arn in dict.fromkeys(arns)],
            "ProjectionExpression": "#k, #v, #o",
            "ExpressionAttributeNames": {"#k": key, "#v": "version", "#o": OWED_FROM},
        }
        found = batch_get(self._dynamodb, self._read, table, request, stop=self._stop,
                          checkpoint=self._checkpoint)  # fmt: skip
        return {raw[key]["S"]: (int(raw["version"]["N"]), OWED_FROM in raw) for raw in found}

    def _mark_vanished(self, kind: Kind, listed: dict[str, set[str]]) -> None:
        """Items of these clusters the table shows alive that ECS did not list: confirm, mark."""
        if not listed:
            return
        table, key = self._tables[kind.resource], kind.resource.key
        fields = (key, "clusterArn", "version", kind.status_field, "eventTime")
        candidates: dict[str, list[dict[str, Any]]] = {}
        for item in scan(self._dynamodb, table, fields, retrier=self._read):
            cluster = item.get("clusterArn")
            if not isinstance(cluster, str) or cluster not in listed:
                continue  # another account's, region's or cluster's: never ours to judge
            if item.get(kind.status_field) == kind.gone_status or item[key] in listed[cluster]:
                continue
            candidates.setdefault(cluster, []).append(item)
        for cluster, items in candidates.items():
            for start in range(0, len(items), PAGE_SIZE):
                self._checkpoint()
                batch = items[start : start + PAGE_SIZE]
                # Listing can lag: what DescribeTasks still returns is compared, not marked.
                described = self._describe(kind, cluster, [item[key] for item in batch])
                self._compare(kind, cluster, described)
                still_there = {d.get(key) for d in described}
                for item in batch:
                    if item[key] not in still_there:
                        self._mark(kind, item, cluster)

    def _mark(self, kind: Kind, item: dict[str, Any], cluster: str) -> None:
        arn, version, seen = item[kind.resource.key], int(item["version"]), item[kind.status_field]
        fix = Fix(MARKED_STOPPED, kind, arn, cluster, version, kind.gone_status, version)
        if not self._apply:
            self._record(fix, None)
            return
        now = self._now()
        sets = ["#status = :gone", "reconciledAt = :now", "reconciledFrom = :seen"]
        values: dict[str, Any] = {
            ":gone": {"S": kind.gone_status},
            ":now": {"S": now.isoformat(timespec="milliseconds")},
            ":seen": {"S": str(seen)},
            ":v": {"N": str(version)},
        }
        if kind is TASKS:
            sets += ["desiredStatus = :gone", "stoppedReason = :reason"]
            values[":reason"] = {"S": GONE_REASON}
        # Gone, as its event would have said: it expires by the same rule (domain.expiry, 2).
        expires_at = expiry.expires_after_window(
            now, item.get("eventTime"), self._config.dynamodb.stopped_task_ttl_days
        )
        if expires_at is not None:
            sets.append("expiresAt = :expires")
            values[":expires"] = {"N": str(expires_at)}
        request = {
            "Key": {kind.resource.key: {"S": arn}},
            "UpdateExpression": "SET " + ", ".join(sets),
            # Exactly what we read: a newer event, or another replica's mark, wins.
            "ConditionExpression": "#version = :v AND #status = :seen",
            "ExpressionAttributeNames": {"#status": kind.status_field, "#version": "version"},
            "ExpressionAttributeValues": values,
        }
        try:
            self._store.update(kind.resource, request)
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            self._record(fix, WriteResult(Outcome.STALE, None, None))
            return
        self._record(fix, WriteResult(Outcome.APPLIED, str(seen), version))

    def _record(self, fix: Fix, result: WriteResult | None) -> None:
        if result is None or result.outcome is Outcome.APPLIED:
            self.tally.fixes[fix.kind] += 1
        if result is not None:
            self.tally.written[str(result.outcome)] = (
                self.tally.written.get(str(result.outcome), 0) + 1
            )
        self._on_fix(fix, result)
