"""`ecswatch reconcile`: after an outage or on a cold start, align the task table with ECS.

Two fixes, both through the same version-guarded write as events (store.py), so a fix can
never overwrite a newer event: a task ECS knows but the table lacks is written with the
task's own `version` (0 if the API gives none: it then only fills a gap); a task the table
shows not STOPPED but ECS no longer knows is written STOPPED at its stored version + 1 (a real
event with that version or higher wins). Dry run unless `apply`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from ecswatch.config import Config
from ecswatch.daemon.dynamo import scan
from ecswatch.daemon.store import Store, WriteResult
from ecswatch.domain.events import (
    TASK_STATE_CHANGE,
    Event,
    Resource,
    build_item,
    redact_environment,
)

RECONCILE_REASON = "ecswatch reconcile: ECS no longer knows this task"
DESCRIBE_BATCH = 100  # DescribeTasks takes at most 100 tasks


@dataclass(frozen=True)
class Fix:
    action: str  # "add" (missing from the table) or "stop" (gone from ECS)
    event: Event

    def __str__(self) -> str:
        status = self.event.detail.get("lastStatus")
        return f"{self.action:<5} {self.event.arn}  version {self.event.version}  {status}"


def _jsonable(value: Any) -> Any:
    """DescribeTasks gives datetimes; events carry ISO strings."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def _event(detail: dict[str, Any], version: int, now: datetime) -> Event:
    redact_environment(detail)
    return Event(
        resource=Resource.TASK,
        detail_type=TASK_STATE_CHANGE,
        arn=detail["taskArn"],
        version=version,
        event_id="ecswatch-reconcile",
        event_time=now.isoformat(),
        detail=detail,
    )


def ecs_tasks(ecs: Any, cluster: str) -> Iterator[dict[str, Any]]:
    """Every task ECS lists in the cluster (running and recently stopped), described."""
    arns: list[str] = []
    for desired in ("RUNNING", "STOPPED"):
        for page in ecs.get_paginator("list_tasks").paginate(
            cluster=cluster, desiredStatus=desired
        ):
            arns += page.get("taskArns", [])
    yield from describe(ecs, cluster, arns)


def describe(ecs: Any, cluster: str, arns: list[str]) -> Iterator[dict[str, Any]]:
    for start in range(0, len(arns), DESCRIBE_BATCH):
        response = ecs.describe_tasks(cluster=cluster, tasks=arns[start : start + DESCRIBE_BATCH])
        yield from response.get("tasks", [])


def plan(ecs: Any, dynamodb: Any, config: Config, clusters: list[str], now: datetime) -> list[Fix]:
    if not clusters:
        clusters = [arn for page in ecs.get_paginator("list_clusters").paginate()
                    for arn in page.get("clusterArns", [])]  # fmt: skip
    stored = {
        item["taskArn"]: item
        for item in scan(
            dynamodb, config.dynamodb.task_table, ("taskArn", "clusterArn", "lastStatus", "version")
        )
    }
    fixes: list[Fix] = []
    for cluster in clusters:
        known: set[str] = set()
        for task in ecs_tasks(ecs, cluster):
            known.add(task["taskArn"])
            if task["taskArn"] not in stored:
                detail = _jsonable(task)
                fixes.append(Fix("add", _event(detail, int(task.get("version") or 0), now)))
        cluster_arns = {cluster, cluster.rsplit("/", 1)[-1]}
        candidates = [
            arn
            for arn, item in stored.items()
            if item.get("lastStatus") != "STOPPED"
            and arn not in known
            and (
                {item.get("clusterArn"), str(item.get("clusterArn", "")).rsplit("/", 1)[-1]}
                & cluster_arns
            )
        ]
        # Confirm they are gone (listing can lag); what DescribeTasks still returns is left alone.
        still_there = {t["taskArn"] for t in describe(ecs, cluster, candidates)}
        for arn in candidates:
            if arn in still_there:
                continue
            detail = _stored_detail(dynamodb, config.dynamodb.task_table, arn)
            version = int(detail.get("version") or 0)
            detail.update(
                lastStatus="STOPPED",
                desiredStatus="STOPPED",
                stoppedReason=RECONCILE_REASON,
                stoppedAt=now.isoformat(),
            )
            fixes.append(Fix("stop", _event(detail, version + 1, now)))
    return fixes


_deserializer = TypeDeserializer()
BOOKKEEPING = ("eventId", "eventTime", "writtenAt", "expiresAt")


def _stored_detail(dynamodb: Any, table: str, arn: str) -> dict[str, Any]:
    """The stored item as a detail again, so the STOPPED fix keeps every other field."""
    raw = dynamodb.get_item(TableName=table, Key={"taskArn": {"S": arn}}, ConsistentRead=True)
    item = {k: _deserializer.deserialize(v) for k, v in raw.get("Item", {}).items()}
    for name in BOOKKEEPING:
        item.pop(name, None)
    item.setdefault("taskArn", arn)
    return item


def apply_fixes(store: Store, fixes: list[Fix], config: Config, now: datetime) -> list[WriteResult]:
    return [
        store.apply(fix.event, build_item(fix.event, now=now,
                                          stopped_task_ttl_days=config.dynamodb.stopped_task_ttl_days))
        for fix in fixes
    ]  # fmt: skip
