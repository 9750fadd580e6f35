"""Reconciliation against moto's ECS and DynamoDB over HTTP: the manual command and the pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from ecswatch.cli import main
from ecswatch.commands.reconcile import reconcile
from tests.conftest import REGION, Running, Stack, wait_for

ACCOUNT = "123456789012"  # moto's
OWN_PROD = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/prod"


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    return stack


def ecs_client(stack: Stack) -> Any:
    return boto3.client("ecs", endpoint_url=stack.emulator.url, region_name=REGION)


def ecs_with_tasks(stack: Stack, count: int, cluster: str = "prod") -> tuple[Any, list[str]]:
    """A cluster with one container instance and `count` running tasks (versions by the shim)."""
    ecs = ecs_client(stack)
    ec2 = boto3.client("ec2", endpoint_url=stack.emulator.url, region_name=REGION)
    ecs.create_cluster(clusterName=cluster)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    document = {"instanceId": instance["InstanceId"], "region": REGION,
                "accountId": ACCOUNT, "availabilityZone": f"{REGION}a"}  # fmt: skip
    ecs.register_container_instance(cluster=cluster, instanceIdentityDocument=json.dumps(document))
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    if not count:
        return ecs, []
    tasks = ecs.run_task(cluster=cluster, taskDefinition="web", count=count, startedBy="test")
    return ecs, [t["taskArn"] for t in tasks["tasks"]]


def task_arn(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:ecs:{region}:{account}:task/prod/{name}"


def put_task(stack: Stack, arn: str, version: int, status: str, **extra: str) -> None:
    """An item as an event would have written it (its cluster ARN taken from the task ARN)."""
    prefix = arn.split(":task/", maxsplit=1)[0]
    item = {"taskArn": arn, "clusterArn": f"{prefix}:cluster/prod", "group": "service:web",
            "lastStatus": status, **extra}  # fmt: skip
    stack.dynamodb.put_item(
        TableName=stack.config.dynamodb.task_table,
        Item={**{k: {"S": v} for k, v in item.items()}, "version": {"N": str(version)}},
    )


def task_event(arn: str, version: int, status: str, **detail: Any) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"event-{version}",
        "source": "aws.ecs",
        "detail-type": "ECS Task State Change",
        "time": datetime.now(UTC).isoformat(),
        "detail": {
            "taskArn": arn,
            "clusterArn": OWN_PROD,
            "group": "service:web",
            "lastStatus": status,
            "desiredStatus": "STOPPED",
            "version": version,
            **detail,
        },
    }


def test_dry_run_writes_nothing_then_apply_fixes_gaps_and_ghosts(
    env: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """The command prints its plan and writes nothing without --apply; --apply converges."""
    _, arns = ecs_with_tasks(env, 2)
    ghost = task_arn("0000000000000000ghost")
    put_task(env, ghost, 4, "RUNNING")  # the table says RUNNING; ECS has never heard of it
    put_task(env, arns[0], 2, "RUNNING")  # known to both at the same version: left alone
    assert main(["reconcile"]) == 0
    out = capsys.readouterr().out
    assert f"added          {arns[1]}  version 2  RUNNING" in out
    assert f"marked_stopped {ghost}  version 4 (table: 4)  STOPPED" in out
    assert "added          arn:aws:ecs:us-east-1:123456789012:container-instance/prod/" in out
    assert arns[0] not in out
    assert "3 fix(es) planned; dry run" in out
    assert set(env.task_items()) == {ghost, arns[0]}

    assert main(["reconcile", "--apply"]) == 0
    assert "written: applied 3" in capsys.readouterr().out
    items = env.task_items()
    assert items[arns[1]]["taskDefinitionArn"].endswith("task-definition/web:1")
    assert items[arns[1]]["version"] == 2
    ghost_item = items[ghost]
    assert (ghost_item["lastStatus"], ghost_item["version"]) == ("STOPPED", 4)  # not invented
    assert ghost_item["reconciledFrom"] == "RUNNING"
    assert ghost_item["group"] == "service:web"  # the stored fields were kept
    assert "reconciledAt" in ghost_item and "expiresAt" in ghost_item
    assert main(["reconcile", "--apply"]) == 0
    assert "written: nothing" in capsys.readouterr().out  # nothing left to fix


@pytest.mark.parametrize("started", [False, True], ids=["never_started", "started"])
def test_real_stopped_event_after_a_mark_is_applied_and_counted(
    env: Stack, start_daemon: Callable[..., Running], started: bool
) -> None:
    """Marked at the stored version, the real STOPPED event (version + 1) still wins."""
    ecs_with_tasks(env, 0)
    arn = task_arn("lost-in-the-outage")
    put_task(env, arn, 5, "RUNNING" if started else "PENDING")
    tally = reconcile(ecs_client(env), env.dynamodb, env.config, ["prod"], apply=True)
    assert tally.fixes["marked_stopped"] == 1
    assert env.task_items()[arn]["version"] == 5

    running = start_daemon(workers={"count": 1}, reconcile={"interval_seconds": 0.0})
    extra = {"startedAt": "2026-11-30T10:00:00Z"} if started else {}
    env.send_events([task_event(arn, 6, "STOPPED", stopCode="TaskFailedToStart",
                                stoppedReason="CannotPullContainerError", **extra)])  # fmt: skip
    wait_for(lambda: running.events("applied") == 1)
    item = env.task_items()[arn]
    assert (item["version"], item["stopCode"]) == (6, "TaskFailedToStart")
    assert item["stoppedReason"] == "CannotPullContainerError"
    assert "reconciledAt" not in item  # the real event replaced the mark entirely
    expected = {} if started else {("prod", "service:web", "TaskFailedToStart"): 1}
    assert running.failed_starts() == expected


def test_other_accounts_and_regions_are_never_touched(env: Stack) -> None:
    """One table fed by several accounts: reconciling our `prod` leaves theirs alone."""
    ecs_with_tasks(env, 1)
    ours = task_arn("ours-vanished")
    theirs = [task_arn("theirs", account="222222222222"), task_arn("west", region="us-west-2")]
    put_task(env, ours, 3, "RUNNING")
    for arn in theirs:
        put_task(env, arn, 3, "RUNNING")
    before = env.task_items()
    tally = reconcile(ecs_client(env), env.dynamodb, env.config, [], apply=True)
    after = env.task_items()
    assert tally.fixes == {"added": 2, "caught_up": 0, "marked_stopped": 1}  # task + instance
    assert after[ours]["lastStatus"] == "STOPPED"
    for arn in theirs:
        assert after[arn] == before[arn]


def test_a_table_already_exact_gets_no_writes(env: Stack) -> None:
    """Tasks and container instances stored at ECS's versions: the pass writes nothing."""
    reconcile(ecs_client(env), env.dynamodb, env.config, [], apply=False)
    ecs, _ = ecs_with_tasks(env, 3)
    reconcile(ecs_client(env), env.dynamodb, env.config, [], apply=True)  # seeds
    before = env.emulator.injector.requests.copy()
    tally = reconcile(ecs, env.dynamodb, env.config, [], apply=True)
    writes = {t: n - before[t] for t, n in env.emulator.injector.requests.items()
              if "PutItem" in t or "UpdateItem" in t}  # fmt: skip
    assert tally.written == {}
    assert sum(writes.values()) == 0


def test_a_deregistered_container_instance_is_marked_inactive_at_its_version(env: Stack) -> None:
    """Container instances converge like tasks: a vanished one becomes INACTIVE, version kept."""
    ecs_with_tasks(env, 0)
    gone = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/prod/terminated-under-its-tasks"
    env.dynamodb.put_item(
        TableName=env.config.dynamodb.container_instance_table,
        Item={"containerInstanceArn": {"S": gone}, "clusterArn": {"S": OWN_PROD},
              "status": {"S": "ACTIVE"}, "version": {"N": "12"}},
    )  # fmt: skip
    tally = reconcile(ecs_client(env), env.dynamodb, env.config, ["prod"], apply=True)
    item = env.items(env.config.dynamodb.container_instance_table)[gone]
    assert (item["status"], item["version"], item["reconciledFrom"]) == ("INACTIVE", 12, "ACTIVE")
    assert tally.fixes == {"added": 1, "caught_up": 0, "marked_stopped": 1}
