"""Deployed, then run: moto's CloudFormation creates deploy/cloudformation/ecswatch.yaml (a
central bus) and member-account.yaml; `ecswatch run` starts with the task definition's own
environment, events go in through the stacks' rules, and land in the stack's tables. So the
templates and the daemon can never disagree on a name, a key or a variable.

moto skips some resource types (tests/test_org_templates.py checks those statically); the
last test here says which, so a moto upgrade or a new resource type is noticed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest

from ecswatch.dev.emulator import Emulator
from tests.conftest import CREDENTIALS, REGION, wait_for
from tests.integration.daemon_process import DaemonProcess
from tests.test_org_templates import SKIPPED_BY_MOTO, TEMPLATES, load

MEMBER_REGION = "us-west-2"
ACCOUNT = "123456789012"  # moto's

pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse .* moto's CloudFormation")


def client(emulator: Emulator, name: str, region: str = REGION) -> Any:
    return boto3.client(name, endpoint_url=emulator.url, region_name=region)


@dataclass
class Deployed:
    emulator: Emulator
    outputs: dict[str, str]
    environment: dict[str, str]  # the task definition's, as ECS would set it
    resources: dict[str, str]  # logical id -> type, of what moto created


def deploy(emulator: Emulator, name: str, template: str, region: str, **parameters: str) -> Any:
    cloudformation = client(emulator, "cloudformation", region)
    cloudformation.create_stack(
        StackName=name,
        TemplateBody=(TEMPLATES / template).read_text(),
        Capabilities=["CAPABILITY_IAM"],
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
    )
    [stack] = cloudformation.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return cloudformation, stack


@pytest.fixture
def central(emulator: Emulator) -> Deployed:
    emulator.reset()
    client(emulator, "ecs").create_cluster(clusterName="ops")
    cloudformation, stack = deploy(
        emulator,
        "central",
        "ecswatch.yaml",
        REGION,
        Image="ecswatch:test",
        ClusterName="ops",
        Subnets="subnet-0a1b2c3d",
        SecurityGroups="sg-0a1b2c3d",
        EventBusName="ecs-org",
        OrganizationId="o-a1b2c3d4e5",
        MemberAccountIds="111111111111,222222222222",
    )
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    summaries = cloudformation.list_stack_resources(StackName="central")
    resources = {
        r["LogicalResourceId"]: r["ResourceType"] for r in summaries["StackResourceSummaries"]
    }
    ecs = client(emulator, "ecs")
    service = ecs.describe_services(cluster="ops", services=["central"])["services"][0]
    task_definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])
    [container] = task_definition["taskDefinition"]["containerDefinitions"]
    environment = {e["name"]: e["value"] for e in container["environment"]}
    return Deployed(emulator, outputs, environment, resources)


@pytest.fixture
def daemon(central: Deployed) -> Iterator[DaemonProcess]:
    """`ecswatch run` with exactly the task definition's environment, plus what the emulator
    stands in for: the endpoint (AWS_ENDPOINT_URL, as for any AWS SDK), credentials (the task
    role's), and a free metrics port (tests run side by side)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ECSWATCH_", "AWS_"))}
    env |= central.environment | CREDENTIALS
    env |= {
        "AWS_ENDPOINT_URL": central.emulator.url,
        "ECSWATCH_METRICS_PORT": "0",
        "ECSWATCH_METRICS_HOST": "127.0.0.1",
    }
    proc = DaemonProcess(env)
    yield proc
    proc.kill()


def task_arn(region: str, n: int) -> str:
    return f"arn:aws:ecs:{region}:{ACCOUNT}:task/ops/{n:032x}"


def task_event(region: str, n: int, status: str, version: int) -> dict[str, str]:
    arn = task_arn(region, n)
    detail = {
        "taskArn": arn,
        "clusterArn": f"arn:aws:ecs:{region}:{ACCOUNT}:cluster/ops",
        "group": "service:web",
        "lastStatus": status,
        "version": version,
    }
    return {
        "Source": "aws.ecs",
        "DetailType": "ECS Task State Change",
        "Detail": json.dumps(detail),
        "Resources": [arn],
    }


def stored(central: Deployed) -> dict[str, tuple[int, str]]:
    dynamodb = client(central.emulator, "dynamodb")
    items = dynamodb.scan(TableName=central.outputs["TaskStateTableName"])["Items"]
    return {i["taskArn"]["S"]: (int(i["version"]["N"]), i["lastStatus"]["S"]) for i in items}


def test_the_stack_runs_ecswatch_with_its_own_task_environment(
    central: Deployed, daemon: DaemonProcess
) -> None:
    """Events put on the stack's central bus reach its queue, the daemon, and its table."""
    assert central.environment["ECSWATCH_SQS_QUEUE_URL"] == central.outputs["QueueUrl"]
    events = client(central.emulator, "events")
    entries = [
        task_event(REGION, 1, "PENDING", 1),
        task_event(REGION, 1, "RUNNING", 2),
        task_event(REGION, 2, "STOPPED", 3),
    ]
    response = events.put_events(Entries=[{**e, "EventBusName": "ecs-org"} for e in entries])
    assert response["FailedEntryCount"] == 0
    wait_for(lambda: len(stored(central)) == 2, timeout=30)
    wait_for(lambda: stored(central)[task_arn(REGION, 1)] == (2, "RUNNING"), timeout=30)
    assert stored(central)[task_arn(REGION, 2)] == (3, "STOPPED")
    origin = {"account": ACCOUNT, "region": REGION, "cluster": "ops", "group": "service:web"}
    wait_for(lambda: daemon.total("ecswatch_tasks_pending_to_stopped_total", **origin) == 1)
    # The rule keeps what it cannot deliver (moto creates the target as written).
    [rule] = events.list_rules(EventBusName="ecs-org")["Rules"]
    [target] = events.list_targets_by_rule(Rule=rule["Name"], EventBusName="ecs-org")["Targets"]
    assert target["DeadLetterConfig"]["Arn"].endswith(":central-undelivered")
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 86400


def test_a_member_accounts_rule_forwards_its_ecs_events_to_the_central_bus(
    central: Deployed, daemon: DaemonProcess
) -> None:
    """member-account.yaml in another region: its rule puts aws.ecs events on the central bus."""
    deploy(
        central.emulator,
        "member",
        "member-account.yaml",
        MEMBER_REGION,
        CentralEventBusArn=central.outputs["EventBusArn"],
    )
    member_events = client(central.emulator, "events", MEMBER_REGION)
    other = {"Source": "aws.ec2", "DetailType": "EC2 Instance State-change", "Detail": "{}"}
    member_events.put_events(Entries=[task_event(MEMBER_REGION, 7, "RUNNING", 4), other])
    wait_for(lambda: stored(central).get(task_arn(MEMBER_REGION, 7)) == (4, "RUNNING"))
    wait_for(lambda: daemon.total("ecswatch_events_total", outcome="applied") == 1)
    assert daemon.total("ecswatch_events_total", outcome="invalid") == 0  # aws.ec2 not forwarded


def test_what_motos_cloudformation_skips_is_exactly_what_is_checked_statically(
    central: Deployed,
) -> None:
    """Everything else is created for real; the skipped types have static tests instead."""
    template = load("ecswatch.yaml")["Resources"]
    skipped = {template[k]["Type"] for k in set(template) - set(central.resources)}
    assert skipped == SKIPPED_BY_MOTO
