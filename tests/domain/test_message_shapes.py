"""The message shapes an organization produces: SNS-wrapped events, and what is not one."""

from __future__ import annotations

import json
from typing import Any

import pytest

from ecswatch.domain.events import Event, Invalid, parse_message
from ecswatch.domain.services import ServiceEvent
from tests.domain.test_events import task_body


def sns(message: str, kind: str = "Notification", **extra: Any) -> str:
    """The JSON SNS delivers to an SQS subscription without raw message delivery."""
    return json.dumps(
        {
            "Type": kind,
            "MessageId": "5b7f2c9e-0000-4000-8000-000000000001",
            "TopicArn": "arn:aws:sns:eu-west-1:210987654321:ecs-events",
            "Message": message,
            "Timestamp": "2026-11-23T12:00:00.000Z",
            "SignatureVersion": "1",
            "Signature": "c2lnbmF0dXJl",
            **extra,
        }
    )


def test_an_sns_wrapped_event_parses_exactly_like_the_raw_one() -> None:
    """SNS without raw delivery wraps the EventBridge envelope: unwrapped, nothing else changes."""
    raw = task_body(cpuShare=0.5, overrides={"containerOverrides": [
        {"environment": [{"name": "TOKEN", "value": "secret"}]}]})  # fmt: skip
    assert parse_message(sns(raw)) == parse_message(raw)
    assert isinstance(parse_message(sns(raw)), Event)


def test_an_sns_wrapped_service_event_is_a_service_event() -> None:
    """Service Action events come through SNS too."""
    envelope = {
        "source": "aws.ecs",
        "detail-type": "ECS Service Action",
        "id": "e-9",
        "time": "2026-11-23T12:00:00Z",
        "resources": ["arn:aws:ecs:eu-west-1:210987654321:service/prod/web"],
        "detail": {"eventName": "SERVICE_STEADY_STATE", "eventType": "INFO"},
    }
    assert isinstance(parse_message(sns(json.dumps(envelope))), ServiceEvent)


@pytest.mark.parametrize(
    "body",
    [
        sns("hello, not JSON"),
        sns(json.dumps({"source": "aws.ec2", "detail-type": "EC2 Instance State-change"})),
        sns(json.dumps(["a", "list"])),
        sns("{}", kind="SubscriptionConfirmation", SubscribeURL="https://sns.example/confirm"),
        sns("{}", kind="UnsubscribeConfirmation"),
        json.dumps({"Type": "Notification", "Message": {"source": "aws.ecs"}}),
    ],
    ids=["not-json", "other-source", "not-an-object", "subscribe", "unsubscribe", "not-a-string"],
)
def test_an_sns_envelope_around_anything_else_is_invalid_with_its_own_reason(body: str) -> None:
    """Not the misleading not_ecs: the operator learns that an SNS subscription is wrong."""
    parsed = parse_message(body)
    assert isinstance(parsed, Invalid)
    assert parsed.reason == "sns_not_ecs"


def test_an_sns_wrapped_ecs_event_that_is_broken_keeps_the_inner_reason() -> None:
    """The inner event's own fault is named as it would be unwrapped."""
    parsed = parse_message(sns(task_body(version="3")))
    assert isinstance(parsed, Invalid)
    assert parsed.reason == "bad_version"


def test_an_event_with_a_type_field_of_its_own_is_not_mistaken_for_sns() -> None:
    """Only a body without EventBridge's keys is taken as SNS JSON."""
    envelope = json.loads(task_body())
    envelope["Type"] = "Notification"
    assert isinstance(parse_message(json.dumps(envelope)), Event)
