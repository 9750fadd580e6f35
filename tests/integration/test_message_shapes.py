"""Message shapes an organization produces, end to end on moto: SNS, FIFO, bodies near 1 MiB."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import boto3
import pytest
import structlog.testing

from ecswatch.daemon.aws.retry import QUEUE_OP, Retrier
from ecswatch.daemon.pipeline.queue import (
    MAX_MESSAGE_BYTES,
    REASON_ATTRIBUTE,
    Message,
    Queue,
    TooLargeToCopyError,
)
from ecswatch.logging import configure_logging
from tests.conftest import REGION, Running, Stack, wait_for
from tests.integration.test_daemon import ARN, drained, task


def make_queue(stack: Stack, name: str, **attributes: str) -> tuple[str, str]:
    """(url, arn) of a new queue on the stack's emulator."""
    url = stack.sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = stack.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return url, arn["Attributes"]["QueueArn"]


def receive_all(stack: Stack, url: str) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    while batch := stack.sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
        VisibilityTimeout=60,
    ).get("Messages", []):
        got += batch
    return got


def test_events_through_a_real_sns_subscription_are_stored_like_raw_ones(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """EventBridge → SNS → SQS without raw delivery: unwrapped; SNS around anything else: DLQ."""
    sns = boto3.client("sns", endpoint_url=stack.emulator.url, region_name=REGION)
    topic = sns.create_topic(Name="ecs-events")["TopicArn"]
    queue_arn = stack.sqs.get_queue_attributes(
        QueueUrl=stack.resources.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    running = start_daemon()
    sns.publish(TopicArn=topic, Message=json.dumps(task(4, "RUNNING")))
    sns.publish(TopicArn=topic, Message="a human wrote this into the topic")
    stack.send_events([task(2, "PENDING")])  # raw, older: stale against the SNS one
    wait_for(drained(stack, running, 3))
    assert stack.task_items()[ARN]["version"] == 4
    assert running.events("applied") == 1
    assert running.events("stale") == 1
    [dead] = stack.dead_letters()
    assert dead["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] == "sns_not_ecs"
    assert json.loads(dead["Body"])["Type"] == "Notification"  # the body as received
    assert running.value("ecswatch_dead_lettered_total", reason="sns_not_ecs") == 1


def test_a_fifo_source_queue_is_consumed_and_its_dlq_copies_carry_group_and_dedup_ids(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """EventBridge → SQS FIFO (one MessageGroupId on the target): consumed in order, serially."""
    dlq_url, dlq_arn = make_queue(stack, "org-events-dlq.fifo", FifoQueue="true")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})
    url, _ = make_queue(stack, "org-events.fifo", FifoQueue="true", RedrivePolicy=redrive)
    bodies = [json.dumps(task(v, s)) for v, s in ((1, "PENDING"), (2, "RUNNING"))]
    bodies.insert(1, "{not an event")
    sent = [
        stack.sqs.send_message(
            QueueUrl=url, MessageBody=body, MessageGroupId="ecs", MessageDeduplicationId=str(i)
        )["MessageId"]
        for i, body in enumerate(bodies)
    ]
    running = start_daemon(sqs={"queue_url": url, "dead_letter_queue_url": dlq_url})
    wait_for(lambda: running.processed() >= 3)
    wait_for(lambda: stack.task_items().get(ARN, {}).get("version") == 2)
    [dead] = receive_all(stack, dlq_url)
    assert dead["Body"] == "{not an event"
    assert dead["Attributes"]["MessageGroupId"] == "ecs"
    assert dead["Attributes"]["MessageDeduplicationId"] == sent[1]
    # Workers share a batch, so FIFO order is not kept within it: versions make that harmless.
    assert running.events("applied") + running.events("stale") == 2


def test_a_body_too_large_to_copy_to_the_dlq_is_left_to_the_redrive_policy(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Near 1 MiB the copy's attributes do not fit: logged, kept, and SQS redrives it whole."""
    dlq_url, dlq_arn = make_queue(stack, "big-dlq")
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
    url, _ = make_queue(stack, "big", RedrivePolicy=redrive)
    body = "x" * (MAX_MESSAGE_BYTES - 100)  # not JSON, and no room for the reason attributes
    stack.sqs.send_message(QueueUrl=url, MessageBody=body)
    configure_logging("INFO", "json")
    with structlog.testing.capture_logs() as logs:
        running = start_daemon(
            sqs={"queue_url": url, "dead_letter_queue_url": dlq_url, "visibility_timeout": 5}
        )
        wait_for(lambda: running.events("invalid", "other") >= 1)
        moved = wait_for(lambda: receive_all(stack, dlq_url), timeout=30)
    assert [m["Body"] for m in moved] == [body]  # the redrive policy's move, not our copy
    assert REASON_ATTRIBUTE not in moved[0].get("MessageAttributes", {})
    [kept] = [e for e in logs if e["event"] == "message_invalid_too_large_to_copy"]
    assert kept["reason"] == "not_json"
    assert running.value("ecswatch_dead_lettered_total", reason="not_json") == 0
    assert running.events("invalid", "other") == 1  # tried once, not looping


def test_a_dlq_that_refuses_the_copy_for_its_size_raises_too_large_to_copy(stack: Stack) -> None:
    """A DLQ made with a smaller MaximumMessageSize refuses; that is the message's own fault."""
    dlq_url, _ = make_queue(stack, "small-dlq", MaximumMessageSize="1024")
    retrier = Retrier(QUEUE_OP, abort=threading.Event())
    queue = Queue(stack.sqs, stack.resources.queue_url, dead_letter_queue_url=dlq_url,
                  retrier=retrier)  # fmt: skip
    with pytest.raises(TooLargeToCopyError, match="shorter than 1024"):
        queue.dead_letter(Message("m-1", "rh-1", "y" * 2000), "not_json", "body is not JSON")
    queue.dead_letter(Message("m-2", "rh-2", "small"), "not_json", "body is not JSON")
    assert [m["Body"] for m in receive_all(stack, dlq_url)] == ["small"]
