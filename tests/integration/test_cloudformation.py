"""The CloudFormation template: cfn-lint clean, and its task role grants what ecswatch calls."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable
from typing import Any

from cfnlint.decode import cfn_yaml

from ecswatch.daemon.expose.metrics import OPERATIONS
from ecswatch.daemon.reconcile.ecs import OPERATIONS as ECS_OPERATIONS
from ecswatch.daemon.reconcile.lease import LEASE_KEY
from ecswatch.daemon.state.service_journal import PREFIX as JOURNAL_PREFIX
from ecswatch.daemon.state.service_journal import SLOTS as JOURNAL_SLOTS
from tests.conftest import Running, Stack, wait_for
from tests.integration.test_reconcile import ecs_with_tasks
from tests.test_deploy import ROOT, run, tool

TEMPLATE = ROOT / "deploy" / "cloudformation" / "ecswatch.yaml"
# API operation (as X-Amz-Target names it) -> the IAM action that allows it.
IAM_ACTION = {
    "ReceiveMessage": "sqs:ReceiveMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
    "SendMessage": "sqs:SendMessage",
    "PutItem": "dynamodb:PutItem",
    "UpdateItem": "dynamodb:UpdateItem",
    "Scan": "dynamodb:Scan",
    "BatchGetItem": "dynamodb:BatchGetItem",
    "GetItem": "dynamodb:GetItem",
    "GetQueueAttributes": "sqs:GetQueueAttributes",
    "DescribeTable": "dynamodb:DescribeTable",
    **{op: f"ecs:{op}" for op in ECS_OPERATIONS},
}


def template() -> dict[str, Any]:
    loaded: dict[str, Any] = cfn_yaml.load(str(TEMPLATE))
    return loaded


def granted() -> set[str]:
    role = template()["Resources"]["TaskRole"]["Properties"]
    return {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in statement["Action"]
    }


def test_template_passes_cfn_lint() -> None:
    result = run(tool("cfn-lint"), str(TEMPLATE.relative_to(ROOT)))
    assert result.returncode == 0, result.stdout + result.stderr


def test_task_role_grants_exactly_the_operations_ecswatch_uses() -> None:
    # The retried operations, plus the two that are not retried per call (the poll loop and the
    # service-state refresher back off on their own).
    # Reconciliation adds its ECS reads and the BatchGetItem that compares versions.
    # Start-up checks add DescribeTable and GetQueueAttributes (also the queue-depth poll).
    used = (
        *OPERATIONS,
        "ReceiveMessage",
        "Scan",
        "BatchGetItem",
        "GetItem",  # the service gauges' journal (state/service_journal.py)
        "GetQueueAttributes",
        "DescribeTable",
        *ECS_OPERATIONS,
    )
    assert granted() == {IAM_ACTION[op] for op in used}


def test_a_real_run_needs_nothing_the_role_does_not_grant(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    stack.send(json.dumps({"source": "aws.ecs"}), *[
        json.dumps({"source": "aws.ecs", "detail-type": "ECS Task State Change",
                    "detail": {"taskArn": f"arn:t{i}", "version": 1}})
        for i in range(5)
    ])  # fmt: skip
    ecs_with_tasks(stack, 1)
    stack.emulator.injector.requests.clear()
    running = start_daemon(reconcile={"interval_seconds": 60.0})
    wait_for(lambda: running.processed() >= 6)
    wait_for(lambda: running.value("ecswatch_reconcile_passes_total", result="success") == 1)
    running.daemon.stop()
    observed = {
        target.split(".", 1)[1]
        for target in stack.emulator.injector.requests
        if target.startswith(("AmazonSQS.", "DynamoDB_20120810.", "AmazonEC2ContainerService"))
    }
    assert {"ReceiveMessage", "PutItem", "DeleteMessageBatch", "SendMessage"} <= observed
    assert {IAM_ACTION[op] for op in observed} <= granted()


def test_put_item_on_the_service_table_reaches_only_ecswatchs_own_keys() -> None:
    """PutItem replaces whole items: on the service table the role allows it only for the
    lease and the journal's slots (dynamodb:LeadingKeys), never for a service's item."""
    role = template()["Resources"]["TaskRole"]["Properties"]
    puts = [
        statement
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if "dynamodb:PutItem" in statement["Action"]
        and {"Fn::GetAtt": ["ServiceStateTable", "Arn"]} in _resources(statement)
    ]
    assert len(puts) == 1
    assert _resources(puts[0]) == [{"Fn::GetAtt": ["ServiceStateTable", "Arn"]}]
    patterns = puts[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    allowed = lambda key: any(fnmatch.fnmatchcase(key, p) for p in patterns)  # noqa: E731
    assert allowed(LEASE_KEY)
    assert all(allowed(f"{JOURNAL_PREFIX}{slot}") for slot in range(JOURNAL_SLOTS))
    assert not allowed("arn:aws:ecs:us-east-1:123456789012:service/prod/web")


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def test_task_definition_drains_before_ecs_kills_it() -> None:
    resources = template()["Resources"]
    [container] = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    env = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert int(env["ECSWATCH_WORKERS_SHUTDOWN_TIMEOUT"]) < container["StopTimeout"]
    assert container["PortMappings"][0]["ContainerPort"] == 9108
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    assert "healthz" in " ".join(container["HealthCheck"]["Command"])
    queue_policy = resources["EventsQueuePolicy"]["Properties"]["PolicyDocument"]
    [statement] = queue_policy["Statement"]
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == {
        "Fn::GetAtt": ["EcsEventsRule", "Arn"]
    }
    for table in ("TaskStateTable", "CtrInstanceStateTable"):
        properties = resources[table]["Properties"]
        ttl = properties["TimeToLiveSpecification"]
        assert ttl == {"AttributeName": "expiresAt", "Enabled": True}
        assert properties["SSESpecification"]["SSEEnabled"] is True
        assert properties["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
