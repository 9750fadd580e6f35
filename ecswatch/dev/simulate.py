"""A realistic ECS event stream with its ground truth, for the demo, the tests and the benches.

Tasks walk PROVISIONING → PENDING → ACTIVATING → RUNNING → DEACTIVATING → STOPPING →
DEPROVISIONING → STOPPED (some stay RUNNING); tasks of failing services go PENDING → STOPPED
with TaskFailedToStart. Every event can be duplicated and the stream shuffled, as
EventBridge's at-least-once, unordered delivery allows. `Truth` says what must land.
"""

from __future__ import annotations

import collections
import json
import random
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ecswatch.domain.events import (
    CONTAINER_INSTANCE_STATE_CHANGE,
    DEPLOYMENT_STATE_CHANGE,
    SERVICE_ACTION,
    TASK_STATE_CHANGE,
)
from ecswatch.domain.services import DEPLOYMENT_PREFIX

ACCOUNT = "123456789012"
REGION = "us-east-1"
STARTED_PATH = ("PROVISIONING", "PENDING", "ACTIVATING", "RUNNING")
STOP_PATH = ("DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED")
FAILED_PATH = ("PROVISIONING", "PENDING", "STOPPED")
PULL_ERROR = (
    "CannotPullContainerError: pull image manifest has been retried 5 time(s): "
    "failed to resolve ref {image}: not found"
)
UNABLE_TO_START = "(service {service}) is unable to consistently start tasks successfully."
MALFORMED_BODY = '{"source": "aws.ecs", "detail-type": "ECS Task State Change", "detail": {'


@dataclass
class Truth:
    """What the tables and counters must show once every event is processed."""

    final: dict[str, tuple[int, str]] = field(default_factory=dict)  # arn -> (version, status)
    failed_starts: collections.Counter[tuple[str, str, str]] = field(
        default_factory=collections.Counter
    )  # (cluster, group, stop_code) -> tasks
    distinct_events: int = 0
    impaired: dict[str, bool] = field(default_factory=dict)  # "cluster/service" -> impaired
    # Each distinct service event counts once, however often it is delivered:
    service_events: collections.Counter[tuple[str, str, str]] = field(
        default_factory=collections.Counter
    )  # (cluster, service, eventName) of Service Actions
    deployments: collections.Counter[tuple[str, str, str]] = field(
        default_factory=collections.Counter
    )  # (cluster, service, state) of Deployment State Changes

    def record(self, arn: str, version: int, status: str) -> None:
        if arn not in self.final or self.final[arn][0] < version:
            self.final[arn] = (version, status)

    def tasks_by_status(self) -> collections.Counter[str]:
        return collections.Counter(s for arn, (_, s) in self.final.items() if ":task/" in arn)


@dataclass
class Stream:
    envelopes: list[dict[str, Any]]
    truth: Truth

    def bodies(self) -> list[str]:
        return [json.dumps(e) for e in self.envelopes]


@dataclass(frozen=True)
class Service:
    cluster: str
    name: str
    image: str
    fails_to_start: bool = False


DEFAULT_SERVICES = (
    Service("prod", "web", "public.ecr.aws/nginx/nginx:1.27"),
    Service("prod", "api", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/api:2.4.1"),
    Service("prod", "billing", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/billing:typo", True),
    Service("staging", "worker", f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/worker:1.0"),
)


def cluster_arn(cluster: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{cluster}"


def envelope(
    detail_type: str, detail: dict[str, Any], resource: str, when: datetime
) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "aws.ecs",
        "account": ACCOUNT,
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [resource],
        "detail": detail,
    }


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def task_events(
    rng: random.Random, service: Service, start: datetime, *, stays_running: bool = False
) -> list[dict[str, Any]]:
    task_id = uuid.UUID(int=rng.getrandbits(128)).hex
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task/{service.cluster}/{task_id}"
    path: tuple[str, ...]
    if service.fails_to_start:
        path = FAILED_PATH
    else:
        path = STARTED_PATH if stays_running else STARTED_PATH + STOP_PATH
    created = start
    base: dict[str, Any] = {
        "taskArn": arn,
        "clusterArn": cluster_arn(service.cluster),
        "taskDefinitionArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{service.name}:7",
        "group": f"service:{service.name}",
        "startedBy": "ecs-svc/9223370000000000000",
        "launchType": "FARGATE",
        "platformVersion": "1.4.0",
        "cpu": "256",
        "memory": "512",
        "availabilityZone": f"{REGION}{rng.choice('abc')}",
        "connectivity": "CONNECTED",
        "createdAt": _iso(created),
        "attachments": [],
        "overrides": {
            "containerOverrides": [
                {
                    "name": service.name,
                    "environment": [
                        {"name": "DATABASE_PASSWORD", "value": f"hunter2-{task_id[:6]}"},
                        {"name": "LOG_LEVEL", "value": "info"},
                    ],
                }
            ]
        },
    }
    events = []
    started_at: str | None = None
    for version, status in enumerate(path, start=1):
        when = created + timedelta(seconds=5 * version)
        detail = dict(base, lastStatus=status, version=version, updatedAt=_iso(when))
        detail["desiredStatus"] = "STOPPED" if status in STOP_PATH else "RUNNING"
        if status == "RUNNING":
            started_at = _iso(when)
        if started_at:
            detail["startedAt"] = started_at
        container: dict[str, Any] = {
            "containerArn": f"{arn.replace(':task/', ':container/')}/{service.name}",
            "name": service.name,
            "image": service.image,
            "lastStatus": status if status in ("RUNNING", "STOPPED") else "PENDING",
            "cpu": "0",
        }
        if status == "STOPPED":
            detail["stoppedAt"] = _iso(when)
            detail["stoppingAt"] = _iso(when - timedelta(seconds=3))
            if service.fails_to_start:
                detail["stopCode"] = "TaskFailedToStart"
                detail["stoppedReason"] = PULL_ERROR.format(image=service.image)
                container["reason"] = detail["stoppedReason"]
            else:
                detail["stopCode"] = "ServiceSchedulerInitiated"
                detail["stoppedReason"] = "Scaling activity initiated by (deployment ecs-svc/123)"
                container["exitCode"] = 0
        detail["containers"] = [container]
        events.append(envelope(TASK_STATE_CHANGE, detail, arn, when))
    return events


def container_instance_events(
    rng: random.Random, cluster: str, start: datetime, changes: int = 3
) -> list[dict[str, Any]]:
    instance_id = uuid.UUID(int=rng.getrandbits(128)).hex
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/{cluster}/{instance_id}"
    statuses = ["REGISTERING", "ACTIVE", "ACTIVE", "DRAINING", "ACTIVE"][: max(1, changes)]
    events = []
    for version, status in enumerate(statuses, start=1):
        when = start + timedelta(seconds=30 * version)
        detail = {
            "containerInstanceArn": arn,
            "clusterArn": cluster_arn(cluster),
            "ec2InstanceId": f"i-{instance_id[:17]}",
            "status": status,
            "agentConnected": status != "REGISTERING" and rng.random() > 0.1,
            "version": version,
            "versionInfo": {"agentVersion": "1.89.2", "dockerVersion": "DockerVersion: 25.0.6"},
            # Real events carry doubles like these: they must land as numbers, never floats.
            "remainingResources": [
                {
                    "name": "CPU",
                    "type": "INTEGER",
                    "integerValue": 2048 - 256 * version,
                    "doubleValue": 0.0,
                },
                {"name": "MEMORY", "type": "INTEGER", "integerValue": 7680, "doubleValue": 0.0},
            ],
            "registeredAt": _iso(start),
            "updatedAt": _iso(when),
            "attributes": [{"name": "ecs.os-type", "value": "linux"}],
        }
        events.append(envelope(CONTAINER_INSTANCE_STATE_CHANGE, detail, arn, when))
    return events


def generate(
    *,
    tasks: int = 40,
    services: tuple[Service, ...] = DEFAULT_SERVICES,
    container_instances: int = 3,
    copies: int = 2,
    shuffle: bool = True,
    seed: int = 0,
    now: datetime | None = None,
    with_service_events: bool = False,
) -> Stream:
    """About `tasks` task lifecycles spread over `services`, each event sent `copies` times;
    with service events, each service also deploys and failing ones end impaired."""
    rng = random.Random(seed)
    start = (now or datetime.now(UTC)) - timedelta(minutes=5)
    distinct: list[dict[str, Any]] = []
    for i in range(tasks):
        service = services[i % len(services)]
        distinct += task_events(
            rng, service, start + timedelta(seconds=i), stays_running=rng.random() < 0.3
        )
    clusters = sorted({s.cluster for s in services})
    for i in range(container_instances):
        distinct += container_instance_events(rng, clusters[i % len(clusters)], start)
    truth = Truth(distinct_events=len(distinct))
    for env in distinct:
        detail = env["detail"]
        arn = detail.get("taskArn") or detail["containerInstanceArn"]
        truth.record(arn, detail["version"], detail.get("lastStatus") or detail.get("status"))
        if detail.get("lastStatus") == "STOPPED" and "startedAt" not in detail:
            group = detail["group"]
            truth.failed_starts[
                (detail["clusterArn"].rsplit("/", 1)[-1], group, detail["stopCode"])
            ] += 1
    if with_service_events:
        health = service_events(services, start)
        truth.impaired = {f"{s.cluster}/{s.name}": s.fails_to_start for s in services}
        truth.distinct_events += len(health)
        for env in health:
            cluster, service = env["resources"][0].rsplit("/", 2)[-2:]
            name = env["detail"]["eventName"]
            if env["detail-type"] == SERVICE_ACTION:
                truth.service_events[(cluster, service, name)] += 1
            else:
                truth.deployments[(cluster, service, name.removeprefix(DEPLOYMENT_PREFIX))] += 1
        distinct += health
    delivered = [env for env in distinct for _ in range(copies)]
    if shuffle:
        rng.shuffle(delivered)
    return Stream(delivered, truth)


def service_arn(cluster: str, service: str) -> str:
    return f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{service}"


def service_event(
    service: Service, kind: str, event_name: str, when: datetime, **detail: Any
) -> dict[str, Any]:
    """An ECS Service Action (kind "action") or Deployment State Change ("deployment")."""
    arn = service_arn(service.cluster, service.name)
    body: dict[str, Any] = {
        "eventType": "WARN" if "IMPAIRED" in event_name or "FAIL" in event_name else "INFO",
        "eventName": event_name,
        "clusterArn": cluster_arn(service.cluster),
        **detail,
    }
    if kind == "action":
        body["createdAt"] = _iso(when)
        return envelope(SERVICE_ACTION, body, arn, when)
    body.setdefault("deploymentId", f"ecs-svc/{zlib.crc32(arn.encode())}")
    body["updatedAt"] = _iso(when)
    return envelope(DEPLOYMENT_STATE_CHANGE, body, arn, when)


def service_events(services: tuple[Service, ...], start: datetime) -> list[dict[str, Any]]:
    """A deployment per service; failing services end impaired, the others in steady state."""
    events = []
    for i, service in enumerate(services):
        t = start + timedelta(seconds=i)
        events.append(service_event(service, "deployment", "SERVICE_DEPLOYMENT_IN_PROGRESS", t))
        if service.fails_to_start:
            events.append(
                service_event(service, "action", "SERVICE_STEADY_STATE", t + timedelta(seconds=5))
            )
            impaired_at = t + timedelta(seconds=60)
            reason = UNABLE_TO_START.format(service=service.name)
            events.append(
                service_event(
                    service, "action", "SERVICE_TASK_START_IMPAIRED", impaired_at, reason=reason
                )
            )
        else:
            events.append(
                service_event(
                    service, "deployment", "SERVICE_DEPLOYMENT_COMPLETED", t + timedelta(seconds=90)
                )
            )
            events.append(
                service_event(service, "action", "SERVICE_STEADY_STATE", t + timedelta(seconds=95))
            )
    return events
