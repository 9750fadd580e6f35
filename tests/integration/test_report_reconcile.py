"""`ecswatch report` and `ecswatch reconcile` against the emulator (DynamoDB and the ECS API)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from ecswatch.cli import main
from ecswatch.commands.reconcile import apply_fixes, plan
from ecswatch.daemon.store import Outcome
from ecswatch.dev.simulate import DEFAULT_SERVICES, generate, service_events
from tests.conftest import Running, Stack, wait_for
from tests.integration.test_store import Recorder, make_store


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    return stack


def test_report_groups_failed_starts_per_service_with_reasons(
    env: Stack, start_daemon: Callable[..., Running], capsys: pytest.CaptureFixture[str]
) -> None:
    stream = generate(tasks=16, copies=1, seed=6, container_instances=2)
    running = start_daemon(workers={"count": 1})
    env.send(*stream.bodies())
    env.send_events(service_events(DEFAULT_SERVICES, datetime.now(UTC)))
    wait_for(lambda: env.queue_counts() == (0, 0) and running.processed() >= len(stream.envelopes))
    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_group = {(s["cluster"], s["group"]): s for s in report["services"]}
    billing = by_group[("prod", "service:billing")]
    failed = sum(stream.truth.failed_starts.values())
    assert billing["failed_to_start"] == failed
    assert billing["stop_codes"] == {"TaskFailedToStart": failed}
    assert billing["reasons"] == {"CannotPullContainerError": failed}
    assert billing["task_start_impaired"] is True
    assert report["services"][0]["group"] == "service:billing"  # worst first
    statuses = stream.truth.tasks_by_status()
    assert sum(s["running"] for s in report["services"]) == statuses["RUNNING"]
    assert sum(s["stopped"] for s in report["services"]) == statuses["STOPPED"]
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "billing" in text
    assert "CannotPullContainerError ×" in text


def test_report_window_excludes_old_failures(
    env: Stack, start_daemon: Callable[..., Running], capsys: pytest.CaptureFixture[str]
) -> None:
    old = generate(tasks=8, copies=1, seed=6, now=datetime.now(UTC) - timedelta(hours=30))
    running = start_daemon()
    env.send(*old.bodies())
    wait_for(lambda: env.queue_counts() == (0, 0) and running.processed() >= len(old.envelopes))
    assert main(["report", "--json", "--hours", "24"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(s["failed_to_start"] for s in report["services"]) == 0
    assert main(["report", "--json", "--hours", "48"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(s["failed_to_start"] for s in report["services"]) == sum(
        old.truth.failed_starts.values()
    )


def ecs_with_tasks(stack: Stack, count: int) -> tuple[Any, list[str]]:
    ecs = boto3.client("ecs", endpoint_url=stack.emulator.url, region_name="us-east-1")
    ec2 = boto3.client("ec2", endpoint_url=stack.emulator.url, region_name="us-east-1")
    ecs.create_cluster(clusterName="prod")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1)["Instances"][0]
    document = {"instanceId": instance["InstanceId"], "region": "us-east-1",
                "accountId": "123456789012", "availabilityZone": "us-east-1a"}  # fmt: skip
    ecs.register_container_instance(cluster="prod", instanceIdentityDocument=json.dumps(document))
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 128}]
    )
    tasks = ecs.run_task(cluster="prod", taskDefinition="web", count=count, startedBy="test")
    return ecs, [t["taskArn"] for t in tasks["tasks"]]


def put_task(stack: Stack, arn: str, version: int, status: str) -> None:
    stack.dynamodb.put_item(
        TableName=stack.config.dynamodb.task_table,
        Item={
            "taskArn": {"S": arn},
            "clusterArn": {"S": "arn:aws:ecs:us-east-1:123456789012:cluster/prod"},
            "group": {"S": "service:web"},
            "lastStatus": {"S": status},
            "version": {"N": str(version)},
        },
    )


def test_reconcile_dry_run_writes_nothing_then_apply_fixes_gaps_and_ghosts(
    env: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    _, arns = ecs_with_tasks(env, 2)
    ghost = "arn:aws:ecs:us-east-1:123456789012:task/prod/0000000000000000ghost"
    put_task(env, ghost, 4, "RUNNING")  # the table says RUNNING; ECS has never heard of it
    put_task(env, arns[0], 9, "RUNNING")  # known to both: left alone
    assert main(["reconcile"]) == 0
    out = capsys.readouterr().out
    assert f"add   {arns[1]}" in out
    assert f"stop  {ghost}  version 5  STOPPED" in out
    assert arns[0] not in out
    assert "dry run" in out
    assert set(env.task_items()) == {ghost, arns[0]}

    assert main(["reconcile", "--apply"]) == 0
    assert "written: applied 2" in capsys.readouterr().out
    items = env.task_items()
    assert items[arns[1]]["taskDefinitionArn"].endswith("task-definition/web:1")
    assert (items[ghost]["lastStatus"], items[ghost]["version"]) == ("STOPPED", 5)
    assert items[ghost]["group"] == "service:web"  # the stored fields were kept
    assert items[arns[0]]["version"] == 9
    assert main(["reconcile", "--apply"]) == 0
    assert "written: nothing" in capsys.readouterr().out  # nothing left to fix


def test_reconcile_never_overwrites_a_newer_event(env: Stack) -> None:
    ecs, _ = ecs_with_tasks(env, 1)
    ghost = "arn:aws:ecs:us-east-1:123456789012:task/prod/0000000000000000ghost"
    put_task(env, ghost, 4, "RUNNING")
    fixes = [
        f
        for f in plan(ecs, env.dynamodb, env.config, ["prod"], datetime.now(UTC))
        if f.action == "stop"
    ]
    put_task(env, ghost, 7, "STOPPING")  # a real event lands between plan and apply
    [result] = apply_fixes(make_store(env, Recorder()), fixes, env.config, datetime.now(UTC))
    assert result.outcome is Outcome.STALE
    assert env.task_items()[ghost]["version"] == 7
