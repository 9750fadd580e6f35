"""Task items made from the real STOPPED events of tests/domain/data, moved in time and renamed."""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from ecswatch.domain.times import parse_time

EVENTS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent.parent / "domain" / "data" / "stopped_tasks.json").read_text()
)
TIME_FIELDS = ("createdAt", "pullStartedAt", "pullStoppedAt", "startedAt", "stoppingAt",
               "executionStoppedAt", "stoppedAt", "updatedAt")  # fmt: skip


def task_item(
    name: str,
    *,
    task_id: str,
    stopped_at: datetime,
    group: str | None = None,
    cluster: str = "prod",
    account: str = "123456789012",
    region: str = "us-west-2",
) -> dict[str, Any]:
    """The detail of real event `name` as a stored item: its times moved so that it stops at
    `stopped_at` (every phase keeps its length), under a new task id, group and cluster."""
    detail = copy.deepcopy(EVENTS[name]["detail"])
    shift = stopped_at - (parse_time(detail["stoppedAt"]) or stopped_at)
    for field in TIME_FIELDS:
        if (when := parse_time(detail.get(field))) is not None:
            detail[field] = (when + shift).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    detail["taskArn"] = f"arn:aws:ecs:{region}:{account}:task/{cluster}/{task_id}"
    detail["clusterArn"] = f"arn:aws:ecs:{region}:{account}:cluster/{cluster}"
    if group is not None:
        detail["group"] = group
    return detail


def as_scanned(value: Any) -> Any:
    """The item as dynamo.scan yields it: numbers as decimal strings."""
    if isinstance(value, dict):
        return {k: as_scanned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_scanned(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


def with_times(item: dict[str, Any], **times: datetime) -> dict[str, Any]:
    return item | {k: v.isoformat().replace("+00:00", "Z") for k, v in times.items()}
