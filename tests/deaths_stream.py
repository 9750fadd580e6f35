"""A stream of task lives that end in every way a task dies, with its truth built by hand:
the cause each lifecycle was written to have, not what the classifier says of it."""

from __future__ import annotations

import collections
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecswatch.dev.simulate import ACCOUNT, REGION, cluster_arn, envelope, service_event
from ecswatch.dev.simulate import Service as SimService
from ecswatch.domain.events import TASK_STATE_CHANGE

ROLLBACK = "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/100."
#: kind -> (stopCode, stoppedReason, containers' (name, exitCode, reason), reaches RUNNING)
ENDINGS: dict[str, tuple[str, str, list[tuple[str, int | None, str]], bool]] = {
    "essential_exit_error": ("EssentialContainerExited", "Essential container in task exited",
                             [("app", 1, ""), ("log_router", 0, "")], True),
    "oom": ("EssentialContainerExited", "Essential container in task exited",
            [("app", 137, "OutOfMemoryError: Container killed due to memory usage"),
             ("envoy", 143, "")], True),
    "elb_health_check": ("ServiceSchedulerInitiated",
                         "Task failed ELB health checks in (target-group arn:aws:"
                         "elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1)",
                         [("app", 143, "")], True),
    "scheduler": ("ServiceSchedulerInitiated",
                  "Scaling activity initiated by (deployment ecs-svc/100)", [("app", 0, "")], True),
    "spot_interruption": ("SpotInterruption", "Your Spot Task was interrupted.",
                          [("app", 143, "")], True),
    "user": ("UserInitiated", "Task stopped by user", [("app", 137, "")], True),
    "image_pull": ("TaskFailedToStart", "CannotPullContainerError: pull image manifest has been "
                   "retried 5 time(s): not found", [("app", None, "CannotPullContainerError")],
                   False),
    "running": ("", "", [], True),  # still running: start phases only
}  # fmt: skip
FAILURES = {"essential_exit_error", "oom", "elb_health_check", "image_pull"}
GROUPS = ("service:web", "service:api", "service:jobs")


@dataclass
class DeathTruth:
    bodies: list[dict[str, Any]] = field(default_factory=list)  # distinct envelopes
    stopped: collections.Counter[tuple[str, str, str]] = field(
        default_factory=collections.Counter
    )  # (group, cause, started) -> tasks
    oom: collections.Counter[tuple[str, str]] = field(default_factory=collections.Counter)
    lifetimes: collections.Counter[str] = field(default_factory=collections.Counter)  # group
    phases: collections.Counter[str] = field(default_factory=collections.Counter)  # phase
    outcomes: collections.Counter[tuple[str, str]] = field(
        default_factory=collections.Counter
    )  # (service, outcome)
    deployment_ids: dict[str, str] = field(default_factory=dict)  # event id -> outcome


def _life(rng: random.Random, kind: str, group: str, start: datetime) -> list[dict[str, Any]]:
    stop_code, reason, containers, starts = ENDINGS[kind]
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/prod/{uuid.UUID(int=rng.getrandbits(128)).hex}"
    times = {"createdAt": start, "pullStartedAt": start + timedelta(seconds=3)}
    if starts:
        times["pullStoppedAt"] = times["pullStartedAt"] + timedelta(seconds=rng.choice((0, 7)))
        times["startedAt"] = times["pullStoppedAt"] + timedelta(seconds=2)
    path = ["PROVISIONING", "PENDING", *(["RUNNING"] if starts else [])]
    if kind != "running":
        path += ["STOPPED"] * rng.choice((1, 2))  # a second STOPPED version happens
    events = []
    for version, status in enumerate(path, start=1):
        detail: dict[str, Any] = {
            "taskArn": arn, "clusterArn": cluster_arn("prod"), "group": group,
            "lastStatus": status, "desiredStatus": "STOPPED" if status == "STOPPED" else "RUNNING",
            "version": version, "launchType": "FARGATE",
        }  # fmt: skip
        shown = {"PROVISIONING": ["createdAt"], "PENDING": ["createdAt", "pullStartedAt"]}
        for name in shown.get(status, times):
            detail[name] = times[name].isoformat().replace("+00:00", "Z")
        if status == "STOPPED":
            stopped = start + timedelta(seconds=30 + 60 * version)
            detail.update(stopCode=stop_code, stoppedReason=reason,
                          stoppedAt=stopped.isoformat().replace("+00:00", "Z"))  # fmt: skip
            detail["containers"] = [
                {"name": name, "lastStatus": "STOPPED", **({"reason": why} if why else {}),
                 **({"exitCode": code} if code is not None else {})}
                for name, code, why in containers
            ]  # fmt: skip
        events.append(envelope(TASK_STATE_CHANGE, detail, arn, start))
    return events


def death_stream(tasks: int = 60, seed: int = 7) -> DeathTruth:
    """`tasks` lives over three services, every ending at least once, plus deployments."""
    rng = random.Random(seed)
    truth = DeathTruth()
    start = datetime.now(UTC) - timedelta(minutes=10)
    kinds = list(ENDINGS)
    for i in range(tasks):
        kind, group = kinds[i % len(kinds)], GROUPS[i % len(GROUPS)]
        truth.bodies += _life(rng, kind, group, start + timedelta(seconds=i))
        started = "false" if kind == "image_pull" else "true"
        if kind != "running":
            truth.stopped[group, kind, started] += 1
        if kind == "oom":
            truth.oom[group, "app"] += 1
        if kind in FAILURES and started == "true":
            truth.lifetimes[group] += 1
        if started == "true":  # phases count once a task starts (never-started: none)
            truth.phases.update(("provisioning", "pull", "start"))
    for n, name in enumerate(("web", "api")):
        service = SimService("prod", name, "image")
        at = start + timedelta(seconds=n)
        deployment = [
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", "ECS deployment ecs-svc/200 in progress.", None),
            ("SERVICE_DEPLOYMENT_FAILED", "ECS deployment circuit breaker: tasks failed to "
             "start.", "failed"),
            ("SERVICE_DEPLOYMENT_IN_PROGRESS", ROLLBACK, "rolled_back"),
            ("SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment ecs-svc/100 completed.", "completed"),
        ]  # fmt: skip
        for step, (event_name, reason, outcome) in enumerate(deployment):
            body = service_event(service, "deployment", event_name,
                                 at + timedelta(seconds=10 * step), reason=reason)  # fmt: skip
            truth.bodies.append(body)
            if outcome:
                truth.outcomes[name, outcome] += 1
                truth.deployment_ids[body["id"]] = outcome
    return truth
