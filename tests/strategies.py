"""Hypothesis strategies: task lifecycles, delivered duplicated and in any order."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

STARTED = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
           "DEPROVISIONING", "STOPPED")  # fmt: skip
FAILED = ("PROVISIONING", "PENDING", "STOPPED")


@dataclass
class Scenario:
    deliveries: list[str]  # SQS bodies, in delivery order
    final: dict[str, int] = field(default_factory=dict)  # arn -> highest version
    failed_starts: Counter[str] = field(default_factory=Counter)  # group -> tasks
    stopped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (group, started) -> tasks


def _body(arn: str, version: int, status: str, group: str, started: bool) -> str:
    detail: dict[str, Any] = {
        "taskArn": arn,
        "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prop",
        "group": group,
        "lastStatus": status,
        "version": version,
    }
    if started:
        detail["startedAt"] = "2026-11-23T10:00:00Z"
    if status == "STOPPED" and not started:
        detail["stopCode"] = "TaskFailedToStart"
    envelope = {"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": detail}
    return json.dumps(envelope)


@st.composite
def lifecycle(draw: st.DrawFn, scenario: Scenario, index: int) -> list[str]:
    arn = f"arn:aws:ecs:us-east-1:1:task/prop/{uuid.uuid4().hex}"
    fails = draw(st.booleans())
    group = f"service:s{index % 3}"
    path = FAILED if fails else STARTED[: draw(st.integers(1, len(STARTED)))]
    # ECS may send another STOPPED version (e.g. container exit codes filled in later).
    if path[-1] == "STOPPED" and draw(st.booleans()):
        path = (*path, "STOPPED")
    bodies = []
    started = False
    for version, status in enumerate(path, start=1):
        started = started or status == "RUNNING"
        bodies.append(_body(arn, version, status, group, started))
    scenario.final[arn] = len(path)
    if fails:
        scenario.failed_starts[group] += 1
    if path[-1] == "STOPPED":
        scenario.stopped[group, "true" if started else "false"] += 1
    return bodies


@st.composite
def scenarios(draw: st.DrawFn, max_tasks: int = 8) -> Scenario:
    scenario = Scenario(deliveries=[])
    distinct: list[str] = []
    for i in range(draw(st.integers(1, max_tasks))):
        distinct += draw(lifecycle(scenario, i))
    extra = draw(st.lists(st.sampled_from(distinct), max_size=len(distinct)))
    scenario.deliveries = draw(st.permutations(distinct + extra))
    return scenario
