"""`ecswatch task`: one task's life from its stored item — each phase with its time and duration,
every container with its exit code and reason, and the cause of its stop — the history ECS's
own API forgets an hour after a task stops.

A task ARN is one GetItem. A bare task id (or `cluster/id`) has no key to look up: the task
table is scanned, page by page, for the ARN that ends with it, and the scan stops at the first
match — so it reads on average half the table and at worst all of it (a Scan costs one read
unit per 8 KB it reads, whatever it returns). Give the ARN when you have it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ecswatch.commands.tally import task_detail
from ecswatch.daemon.state.dynamo import plain_item, scan
from ecswatch.domain.arns import cluster_name
from ecswatch.domain.stops import (
    classify,
    is_failure,
    lifetime_seconds,
    oom_containers,
    start_phases,
)
from ecswatch.domain.times import normalize_time, parse_time

#: the times a Task State Change carries, with what each one marks
TIMES = (
    ("createdAt", "created"),
    ("pullStartedAt", "image pull started"),
    ("pullStoppedAt", "image pull finished"),
    ("startedAt", "started (RUNNING)"),
    ("stoppingAt", "stopping"),
    ("executionStoppedAt", "containers stopped"),
    ("stoppedAt", "stopped"),
)
_TASK_ARN = re.compile(r"arn:[\w-]+:ecs:[\w-]*:\d*:task/\S+")
_TASK_ID = re.compile(r"([\w.-]+/)?[\w-]+")


def task_ref(text: str) -> str:
    """A task ARN, a task id or `cluster/id`, as given; ValueError for anything else."""
    text = text.strip()
    if _TASK_ARN.fullmatch(text) or (not text.startswith("arn:") and _TASK_ID.fullmatch(text)):
        return text
    raise ValueError(f"not a task ARN, task id or cluster/id: {text!r}")


def find_task(dynamodb: Any, table: str, ref: str) -> dict[str, Any] | None:
    """The stored item of the task `ref` names, or None (see the module's note on cost)."""
    arn = ref
    if not ref.startswith("arn:"):
        needle = "/" + ref
        matches = scan(
            dynamodb, table, ("taskArn",),
            where="contains(#arn, :needle)", names={"#arn": "taskArn"}, values={":needle": needle},
        )  # fmt: skip
        arn = next((m["taskArn"] for m in matches if m["taskArn"].endswith(needle)), "")
        if not arn:
            return None
    item = dynamodb.get_item(TableName=table, Key={"taskArn": {"S": arn}}).get("Item")
    return plain_item(item) if item else None


@dataclass
class TaskLife:
    task_arn: str
    cluster: str
    group: str
    last_status: str
    desired_status: str
    launch_type: str
    task_definition: str
    stop_code: str
    stopped_reason: str
    cause: str | None  # only for a STOPPED task
    failure: bool | None  # the service's own fault (domain.stops.FAILURE_CAUSES)
    timeline: list[dict[str, Any]]  # {"event", "field", "at", "seconds_since_previous"}
    phases: dict[str, float]  # provisioning, pull, start, running, stopping (seconds)
    containers: list[dict[str, Any]]  # {"name", "last_status", "exit_code", "reason", "oom"}
    version: int
    written_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def life_of(item: dict[str, Any]) -> TaskLife:
    """The story of one stored task item."""
    detail = task_detail(item)
    stopped = detail.get("lastStatus") == "STOPPED"
    cause = str(classify(detail)) if stopped else None
    marks = sorted(
        (when, field, event)
        for field, event in TIMES
        if (when := parse_time(detail.get(field))) is not None
    )
    timeline: list[dict[str, Any]] = []
    previous = None
    for when, field, event in marks:
        since: float | None = (
            None if previous is None else round((when - previous).total_seconds(), 3)
        )
        timeline.append({"event": event, "field": field, "at": normalize_time(detail[field]),
                         "seconds_since_previous": since})  # fmt: skip
        previous = when
    phases = dict(start_phases(detail))
    if (running := lifetime_seconds(detail)) is not None:
        phases["running"] = running
    stopping, ended = parse_time(detail.get("stoppingAt")), parse_time(detail.get("stoppedAt"))
    if stopping is not None and ended is not None and ended >= stopping:
        phases["stopping"] = (ended - stopping).total_seconds()
    oom = set(oom_containers(detail))
    containers = [
        {
            "name": c.get("name"),
            "last_status": c.get("lastStatus"),
            "exit_code": c.get("exitCode"),
            "reason": c.get("reason"),
            "oom": c.get("name") in oom,
        }
        for c in detail.get("containers") or []
        if isinstance(c, dict)
    ]
    return TaskLife(
        task_arn=str(detail.get("taskArn", "")),
        cluster=cluster_name(detail.get("clusterArn")),
        group=str(detail.get("group") or ""),
        last_status=str(detail.get("lastStatus") or ""),
        desired_status=str(detail.get("desiredStatus") or ""),
        launch_type=str(detail.get("launchType") or ""),
        task_definition=str(detail.get("taskDefinitionArn") or "").rsplit("/", 1)[-1],
        stop_code=str(detail.get("stopCode") or ""),
        stopped_reason=str(detail.get("stoppedReason") or ""),
        cause=cause,
        failure=is_failure(cause) if cause is not None else None,
        timeline=timeline,
        phases={name: round(seconds, 3) for name, seconds in phases.items()},
        containers=containers,
        version=int(detail.get("version") or 0),
        written_at=str(detail.get("writtenAt") or ""),
    )


def render(life: TaskLife) -> str:
    lines = [
        f"Task {life.task_arn}",
        f"  cluster {life.cluster or '-'}, group {life.group or '-'}, "
        f"task definition {life.task_definition or '-'}, launch type {life.launch_type or '-'}",
        f"  status {life.last_status or '-'} (desired {life.desired_status or '-'})",
    ]
    if life.cause is not None:
        kind = "the service's own failure" if life.failure else "not a failure of the service"
        lines.append(f"  cause {life.cause} ({kind})")
        lines.append(f"  stopCode {life.stop_code or '-'}: {life.stopped_reason or '-'}")
    lines.append("Timeline (UTC):")
    for mark in life.timeline:
        gap = mark["seconds_since_previous"]
        lines.append(
            f"  {mark['at']}  {mark['event']:<20}" + ("" if gap is None else f" +{_span(gap)}")
        )
    if life.phases:
        lines.append(
            "Phases: " + ", ".join(f"{name} {_span(s)}" for name, s in life.phases.items())
        )
    lines.append(f"Containers ({len(life.containers)}):")
    for c in life.containers:
        exit_code = "-" if c["exit_code"] is None else c["exit_code"]
        lines.append(
            f"  {c['name'] or '(unnamed)':<20} {c['last_status'] or '-':<8} exit {exit_code:<4} "
            + (f"{c['reason']}" if c["reason"] else "")
            + ("  [OOM kill]" if c["oom"] else "")
        )
    lines.append(f"Item version {life.version}, written {life.written_at or '-'}")
    return "\n".join(line.rstrip() for line in lines)


def _span(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
