"""A synthetic organization for bench/scale.py: its clusters, services and tasks, seeded straight
into the emulator's tables and ECS, and the event stream a replica receives from it.

Shape: `services` services, 100 per cluster, `tasks` tasks each. Task items are seeded directly
(BatchWriteItem of items as the events' own write builds them). The first `ecs_clusters`
clusters also exist in the emulator's ECS (moto, through ecswatch/dev/ecs_shim.py) with their
services and running tasks, and their items agree with ECS (same ARNs and versions), so a
reconciliation pass over them reads everything and finds nothing to fix: the steady state.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ecswatch.config import Config
from ecswatch.daemon.state.dynamo import serialize_item
from ecswatch.dev.simulate import ACCOUNT, REGION, Service, service_arn, service_event, task_events
from ecswatch.domain.events import Event, build_item, parse_message

SERVICES_PER_CLUSTER = 100
OOM_REASON = "OutOfMemoryError: Container killed due to memory usage"


@dataclass(frozen=True)
class Org:
    services: int
    tasks: int  # per service

    def clusters(self) -> list[str]:
        return [f"c{i:03d}" for i in range(-(-self.services // SERVICES_PER_CLUSTER))]

    def all_services(self) -> Iterator[Service]:
        for i in range(self.services):
            cluster = f"c{i // SERVICES_PER_CLUSTER:03d}"
            yield Service(cluster, f"svc{i % SERVICES_PER_CLUSTER:03d}", "example/app:1")


def _item(envelope: dict[str, Any], now: datetime) -> dict[str, Any]:
    event = parse_message(json.dumps(envelope))
    assert isinstance(event, Event)
    return serialize_item(build_item(event, now=now, stopped_task_ttl_days=7))


def put_items(dynamodb: Any, table: str, items: Iterator[dict[str, Any]], threads: int = 4) -> int:
    """BatchWriteItem, 25 at a time, `threads` at once; returns how many were written."""

    def write(batch: list[dict[str, Any]]) -> None:
        requests = {table: [{"PutRequest": {"Item": item}} for item in batch]}
        while requests:
            requests = dynamodb.batch_write_item(RequestItems=requests).get("UnprocessedItems")

    written, batch, batches = 0, [], []
    for item in items:
        batch.append(item)
        if len(batch) == 25:
            batches.append(batch)
            batch = []
    batches += [batch] if batch else []
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(write, batches):
            written += 25
    return min(written, sum(len(b) for b in batches))


def task_items(
    org: Org, ecs_arns: dict[str, list[str]], *, status: str = "RUNNING", seed: int = 1
) -> Iterator[dict[str, Any]]:
    """One item per task; tasks ECS runs keep its ARN and the version the shim reports."""
    rng, now = random.Random(seed), datetime.now(UTC)
    for service in org.all_services():
        events = task_events(
            rng, service, now - timedelta(hours=1), stays_running=status != "STOPPED"
        )
        template = events[-1]
        known = ecs_arns.get(f"{service.cluster}/{service.name}", [])
        for n in range(org.tasks):
            envelope = json.loads(json.dumps(template))
            if n < len(known) and status == "RUNNING":
                envelope["detail"]["taskArn"] = known[n]
                envelope["detail"]["version"] = 2  # the shim's version for RUNNING
            else:
                tail = f"{rng.getrandbits(64):016x}"
                envelope["detail"]["taskArn"] = envelope["detail"]["taskArn"][:-16] + tail
            envelope["resources"] = [envelope["detail"]["taskArn"]]
            yield _item(envelope, now)


def service_items(org: Org) -> Iterator[dict[str, Any]]:
    """Each service's item with the counts a pass would have written (countsAt now)."""
    now = datetime.now(UTC)
    for service in org.all_services():
        yield {
            "serviceArn": {"S": service_arn(service.cluster, service.name)},
            "clusterName": {"S": service.cluster},
            "serviceName": {"S": service.name},
            "desiredTasks": {"N": str(org.tasks)},
            "runningTasks": {"N": str(org.tasks)},
            "pendingTasks": {"N": "0"},
            "countsAt": {"S": now.isoformat(timespec="seconds")},
            "expiresAt": {"N": str(int(now.timestamp()) + 30 * 86400)},
        }


def stream(org: Org, seed: int = 2) -> list[str]:
    """What a replica receives per service: a failed start, a task that starts, one killed by
    OOM, and a steady state and a completed deployment: every per-service series once."""
    rng, start = random.Random(seed), datetime.now(UTC) - timedelta(minutes=30)
    bodies = []
    for service in org.all_services():
        failing = Service(service.cluster, service.name, service.image, fails_to_start=True)
        running = task_events(rng, service, start, stays_running=True)[-1]
        oom = task_events(rng, service, start)[-1]
        for detail in (running["detail"], oom["detail"]):
            detail["pullStartedAt"] = detail["createdAt"]
            detail["pullStoppedAt"] = detail["startedAt"]
        oom["detail"]["stopCode"] = "EssentialContainerExited"
        oom["detail"]["stoppedReason"] = "Essential container in task exited"
        oom["detail"]["containers"][0].update(exitCode=137, reason=OOM_REASON)
        bodies += [json.dumps(e) for e in (task_events(rng, failing, start)[-1], running, oom)]
        for kind, name, minutes in (("action", "SERVICE_STEADY_STATE", 1),
                                    ("deployment", "SERVICE_DEPLOYMENT_IN_PROGRESS", 2),
                                    ("deployment", "SERVICE_DEPLOYMENT_COMPLETED", 3)):  # fmt: skip
            when = start + timedelta(minutes=minutes)
            bodies.append(json.dumps(service_event(service, kind, name, when)))
    rng.shuffle(bodies)
    return bodies


def build_ecs(ecs: Any, ec2: Any, org: Org, clusters: list[str]) -> dict[str, list[str]]:
    """`clusters` in the emulator's ECS with their services and running tasks; task ARNs by
    `cluster/service`."""
    ecs.register_task_definition(
        family="app", containerDefinitions=[{"name": "app", "image": "example/app:1", "memory": 1}]
    )
    arns: dict[str, list[str]] = {}
    for cluster in clusters:
        ecs.create_cluster(clusterName=cluster)
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"]
        document = {"instanceId": instance[0]["InstanceId"], "region": REGION,
                    "accountId": ACCOUNT, "availabilityZone": f"{REGION}a"}  # fmt: skip
        ecs.register_container_instance(
            cluster=cluster, instanceIdentityDocument=json.dumps(document)
        )
    for service in org.all_services():
        if service.cluster not in clusters:
            continue
        ecs.create_service(cluster=service.cluster, serviceName=service.name,
                           taskDefinition="app", desiredCount=org.tasks)  # fmt: skip
        tasks = ecs.run_task(cluster=service.cluster, taskDefinition="app", count=org.tasks,
                             group=f"service:{service.name}")["tasks"]  # fmt: skip
        arns[f"{service.cluster}/{service.name}"] = [t["taskArn"] for t in tasks]
    return arns


def table_names(config: Config) -> dict[str, str]:
    return {"task": config.dynamodb.task_table, "service": config.dynamodb.service_table}
