"""Idempotent infrastructure: queue + DLQ with redrive, the tables (TTL, point-in-time
recovery), the event bus and its policy (commands.event_bus), the rule, the queue policy.

Each step looks first and acts only on what is missing or ours-but-drifted; a resource that
exists in a shape ecswatch cannot use (a table keyed on another attribute, a redrive to
someone else's DLQ) is a BootstrapError naming it, never silently changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ecswatch.commands.event_bus import ensure_bus, ensure_bus_policy
from ecswatch.config import Config, override
from ecswatch.domain.events import Resource

POLICY_SID = "ecswatch-eventbridge"
EVENT_PATTERN = {"source": ["aws.ecs"]}
TARGET_ID = "ecswatch-queue"
DLQ_RETENTION_SECONDS = 14 * 86400  # the maximum: time to look at what failed
TTL_ATTRIBUTE = "expiresAt"
FIFO_GROUP = "ecswatch"


class BootstrapError(Exception):
    """An existing resource conflicts with what ecswatch needs."""


@dataclass(frozen=True, slots=True)
class Change:
    kind: str  # queue, table, ttl, pitr, bus, bus-policy, rule, target, policy
    name: str
    action: str  # created, updated, exists

    def __str__(self) -> str:
        return f"{self.action:<8} {self.kind:<7} {self.name}"


@dataclass(frozen=True, slots=True)
class BootstrapResult:
    queue_url: str
    dead_letter_queue_url: str
    rule_arn: str
    changes: tuple[Change, ...]

    def configure(self, config: Config) -> Config:
        """`config` pointed at the queues bootstrap found or made."""
        urls = {"queue_url": self.queue_url, "dead_letter_queue_url": self.dead_letter_queue_url}
        return override(config, sqs=urls)


def queue_name(config: Config) -> str:
    url = config.sqs.queue_url
    return url.rstrip("/").rsplit("/", 1)[-1] if url else config.bootstrap.queue_name


def dead_letter_queue_name(config: Config) -> str:
    url = config.sqs.dead_letter_queue_url
    return url.rstrip("/").rsplit("/", 1)[-1] if url else config.bootstrap.dead_letter_queue_name


def bootstrap(config: Config, *, sqs: Any, dynamodb: Any, events: Any) -> BootstrapResult:
    changes: list[Change] = []
    fifo = queue_name(config).endswith(".fifo")
    if fifo != dead_letter_queue_name(config).endswith(".fifo"):
        raise BootstrapError("the queue and its DLQ must both be FIFO (.fifo) or both standard")
    dlq_url, _ = _ensure_queue(sqs, dead_letter_queue_name(config), _dlq_attributes(fifo), changes)
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": config.bootstrap.max_receive_count,
    }
    queue_url, created = _ensure_queue(
        sqs, queue_name(config), _queue_attributes(config, redrive), changes
    )
    queue_arn = _queue_arn(sqs, queue_url)
    if not created:
        _ensure_redrive(sqs, queue_url, redrive, changes)
    for key, table in (
        (Resource.TASK.key, config.dynamodb.task_table),
        (Resource.CONTAINER_INSTANCE.key, config.dynamodb.container_instance_table),
        ("serviceArn", config.dynamodb.service_table),
        ("eventKey", config.dynamodb.service_event_table),
    ):
        _ensure_table(dynamodb, table, key, changes)
        _ensure_point_in_time_recovery(dynamodb, table, changes)

    def record(kind: str, name: str, action: str) -> None:
        changes.append(Change(kind, name, action))

    bus_arn = ensure_bus(events, config.bootstrap, record)
    ensure_bus_policy(events, config.bootstrap, bus_arn, record)
    rule_arn = _ensure_rule(events, config, changes)
    _ensure_target(events, config, queue_arn, changes)
    _ensure_queue_policy(sqs, queue_url, queue_arn, rule_arn, changes)
    return BootstrapResult(queue_url, dlq_url, rule_arn, tuple(changes))


# EventBridge sends to a FIFO queue only with content-based deduplication on.
FIFO_ATTRIBUTES = {"FifoQueue": "true", "ContentBasedDeduplication": "true"}


def _dlq_attributes(fifo: bool) -> dict[str, str]:
    attributes = {"MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS)}
    return {**attributes, "SqsManagedSseEnabled": "true", **(FIFO_ATTRIBUTES if fifo else {})}


def _queue_attributes(config: Config, redrive: dict[str, Any]) -> dict[str, str]:
    return {
        "VisibilityTimeout": str(config.sqs.visibility_timeout),
        "ReceiveMessageWaitTimeSeconds": str(config.sqs.wait_time_seconds),
        "RedrivePolicy": json.dumps(redrive),
        "SqsManagedSseEnabled": "true",
        **(FIFO_ATTRIBUTES if queue_name(config).endswith(".fifo") else {}),
    }


def _ensure_queue(
    sqs: Any, name: str, attributes: dict[str, str], changes: list[Change]
) -> tuple[str, bool]:
    try:
        url: str = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        changes.append(Change("queue", name, "exists"))
        return url, False
    except ClientError as exc:
        if not _is_missing_queue(exc):
            raise
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    changes.append(Change("queue", name, "created"))
    return url, True


def _is_missing_queue(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return "NonExistentQueue" in error.get("Code", "") or error.get("QueryErrorCode") == (
        "QueueDoesNotExist"
    )


def _queue_arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _ensure_redrive(sqs: Any, url: str, redrive: dict[str, Any], changes: list[Change]) -> None:
    name = url.rsplit("/", 1)[-1]
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["RedrivePolicy", "Policy"]
    ).get("Attributes", {})
    current = json.loads(attributes.get("RedrivePolicy") or "{}")
    if current.get("deadLetterTargetArn") not in (None, redrive["deadLetterTargetArn"]):
        raise BootstrapError(
            f"queue {name} already redrives to {current['deadLetterTargetArn']}, "
            f"not to {redrive['deadLetterTargetArn']}: fix it or name other queues in the config"
        )
    if current and int(current.get("maxReceiveCount", 0)) == redrive["maxReceiveCount"]:
        return
    update = {"RedrivePolicy": json.dumps(redrive)}
    if attributes.get("Policy"):
        # Unchanged, but sent along: moto forgets a Policy missing from SetQueueAttributes.
        update["Policy"] = attributes["Policy"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes=update)
    changes.append(Change("redrive", name, "updated"))


def _ensure_table(dynamodb: Any, table: str, key: str, changes: list[Change]) -> None:
    try:
        description = dynamodb.describe_table(TableName=table)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            SSESpecification={"Enabled": True, "SSEType": "KMS"},
        )
        dynamodb.get_waiter("table_exists").wait(
            TableName=table, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        changes.append(Change("table", table, "created"))
    else:
        schema = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
        if schema != [(key, "HASH")]:
            raise BootstrapError(
                f"table {table} exists with key schema {schema}; ecswatch needs {key} (S) as "
                "its only key: use another table name in the config"
            )
        changes.append(Change("table", table, "exists"))
    ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        if ttl.get("AttributeName") != TTL_ATTRIBUTE:
            raise BootstrapError(
                f"table {table} has TTL on {ttl.get('AttributeName')}; "
                f"ecswatch writes {TTL_ATTRIBUTE}"
            )
        changes.append(Change("ttl", f"{table}.{TTL_ATTRIBUTE}", "exists"))
        return
    dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
    )
    changes.append(Change("ttl", f"{table}.{TTL_ATTRIBUTE}", "created"))


def _ensure_point_in_time_recovery(dynamodb: Any, table: str, changes: list[Change]) -> None:
    """As the CloudFormation stack does: a table of state is restorable to any second."""
    backups = dynamodb.describe_continuous_backups(TableName=table)["ContinuousBackupsDescription"]
    status = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if status == "ENABLED":
        changes.append(Change("pitr", table, "exists"))
        return
    dynamodb.update_continuous_backups(
        TableName=table,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
    )
    changes.append(Change("pitr", table, "created"))


def _ensure_rule(events: Any, config: Config, changes: list[Change]) -> str:
    name, bus = config.bootstrap.rule_name, config.bootstrap.event_bus_name
    try:
        rule = events.describe_rule(Name=name, EventBusName=bus)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        rule = None
    pattern = json.loads(rule["EventPattern"]) if rule and rule.get("EventPattern") else None
    if rule is not None and pattern == EVENT_PATTERN and rule.get("State") == "ENABLED":
        changes.append(Change("rule", name, "exists"))
        return str(rule["Arn"])
    arn = events.put_rule(
        Name=name,
        EventBusName=bus,
        EventPattern=json.dumps(EVENT_PATTERN),
        State="ENABLED",
        Description="Amazon ECS events for ecswatch",
    )["RuleArn"]
    changes.append(Change("rule", name, "created" if rule is None else "updated"))
    return str(arn)


def _ensure_target(events: Any, config: Config, queue_arn: str, changes: list[Change]) -> None:
    name, bus = config.bootstrap.rule_name, config.bootstrap.event_bus_name
    targets = events.list_targets_by_rule(Rule=name, EventBusName=bus).get("Targets", [])
    if any(t.get("Arn") == queue_arn for t in targets):
        changes.append(Change("target", f"{name} -> {queue_arn}", "exists"))
        return
    target: dict[str, Any] = {"Id": TARGET_ID, "Arn": queue_arn}
    if queue_arn.endswith(".fifo"):
        # One group: FIFO then delivers serially (docs/operating/many-accounts.md: a trade-off).
        target["SqsParameters"] = {"MessageGroupId": FIFO_GROUP}
    response = events.put_targets(Rule=name, EventBusName=bus, Targets=[target])
    if response.get("FailedEntryCount"):
        raise BootstrapError(f"rule {name}: target not added: {response.get('FailedEntries')}")
    changes.append(Change("target", f"{name} -> {queue_arn}", "created"))


def queue_policy_statement(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """EventBridge may send to the queue, but only on behalf of our rule."""
    return {
        "Sid": POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }


def _ensure_queue_policy(
    sqs: Any, url: str, queue_arn: str, rule_arn: str, changes: list[Change]
) -> None:
    name = url.rsplit("/", 1)[-1]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    raw = attributes.get("Attributes", {}).get("Policy")
    policy: dict[str, Any] = json.loads(raw) if raw else {"Version": "2012-10-17"}
    found = policy.get("Statement", [])
    statements: list[dict[str, Any]] = [found] if isinstance(found, dict) else list(found)
    wanted = queue_policy_statement(queue_arn, rule_arn)
    if wanted in statements:
        changes.append(Change("policy", name, "exists"))
        return
    others = [s for s in statements if s.get("Sid") != POLICY_SID]
    policy["Statement"] = [*others, wanted]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    changes.append(Change("policy", name, "updated" if raw else "created"))
