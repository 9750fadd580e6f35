"""Checks before consuming: every table exists keyed as the contract says, the queue and the
DLQ exist and differ. A definite misconfiguration stops start-up (exit 2, naming the key);
an endpoint that cannot be reached or a permission not there yet is waited out with backoff
while /healthz answers, since ECS must not kill a task waiting for IAM to propagate."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from ecswatch.config import Config, ConfigError
from ecswatch.daemon.aws.errors import error_code, systemic_reason

log = structlog.get_logger("ecswatch.daemon.expose.preflight")

MAX_WAIT_SECONDS = 30.0
_MISSING = ("ResourceNotFoundException", "QueueDoesNotExist", "AWS.SimpleQueueService.NonExist")


def tables(config: Config) -> list[tuple[str, str, str]]:
    """(config key, table name, key attribute) of every table the daemon writes."""
    d = config.dynamodb
    return [
        ("dynamodb.task_table", d.task_table, "taskArn"),
        ("dynamodb.container_instance_table", d.container_instance_table, "containerInstanceArn"),
        ("dynamodb.service_table", d.service_table, "serviceArn"),
        ("dynamodb.service_event_table", d.service_event_table, "eventKey"),
    ]


def check(config: Config, sqs: Any, dynamodb: Any) -> None:
    """One pass; ConfigError on a definite misconfiguration, AWS errors propagate."""
    sq = config.sqs
    if sq.dead_letter_queue_url and sq.dead_letter_queue_url == sq.queue_url:
        raise ConfigError(["sqs.dead_letter_queue_url: must not be the source queue"])
    for key, table, attribute in tables(config):
        try:
            description = dynamodb.describe_table(TableName=table)["Table"]
        except ClientError as exc:
            if error_code(exc).startswith(_MISSING):
                raise ConfigError([f"{key}: table {table} does not exist"]) from exc
            raise
        schema = [(k["AttributeName"], k["KeyType"]) for k in description["KeySchema"]]
        types = {
            a["AttributeName"]: a["AttributeType"] for a in description["AttributeDefinitions"]
        }
        if schema != [(attribute, "HASH")] or types.get(attribute) != "S":
            found = ", ".join(f"{name} ({types.get(name, '?')})" for name, _ in schema)
            raise ConfigError(
                [f"{key}: table {table} is keyed on {found}; ecswatch needs {attribute} (S) only"]
            )
    queues = (
        ("sqs.queue_url", sq.queue_url),
        ("sqs.dead_letter_queue_url", sq.dead_letter_queue_url),
    )
    for key, url in queues:
        if not url:
            continue
        try:
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        except ClientError as exc:
            if error_code(exc).startswith(_MISSING):
                raise ConfigError([f"{key}: queue {url} does not exist"]) from exc
            raise


def wait_until_ready(
    config: Config,
    sqs: Any,
    dynamodb: Any,
    stop: threading.Event,
    *,
    backoff: Callable[[int], float],
) -> bool:
    """`check` until it passes (True) or `stop` is set (False); ConfigError propagates."""
    failures = 0
    while not stop.is_set():
        try:
            check(config, sqs, dynamodb)
        except (ClientError, BotoCoreError) as exc:
            failures += 1
            wait = min(MAX_WAIT_SECONDS, max(0.5, backoff(failures)))
            log.warning(
                "preflight_waiting",
                reason=systemic_reason(exc),
                error=type(exc).__name__,
                detail=str(exc)[:300],
                retry_in_seconds=round(wait, 1),
            )
            stop.wait(wait)
            continue
        if failures:
            log.warning("preflight_passed", after_failures=failures)
        return True
    return False
