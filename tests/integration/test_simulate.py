"""`ecswatch simulate`: steady simulated traffic through EventBridge (or SQS) into the queue."""

from __future__ import annotations

import collections
import json

import pytest

from ecswatch.cli import main
from ecswatch.dev.publish import ID_GUARDED
from ecswatch.dev.simulate import generate
from tests.conftest import Stack


def queued(stack: Stack) -> int:
    return sum(stack.queue_counts())


def drain(stack: Stack) -> list[str]:
    """Every body in the source queue (received with a long visibility, so each once; no long
    poll: the queue's own 20 s would make the last, empty receive wait that long)."""
    bodies: list[str] = []
    while got := stack.sqs.receive_message(
        QueueUrl=stack.resources.queue_url,
        MaxNumberOfMessages=10,
        VisibilityTimeout=300,
        WaitTimeSeconds=0,
    ).get("Messages", []):
        bodies += [m["Body"] for m in got]
    return bodies


@pytest.mark.parametrize("via", ["eventbridge", "sqs"])
def test_simulate_publishes_the_requested_number_of_events(
    stack: Stack,
    via: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    monkeypatch.setenv("ECSWATCH_SQS_QUEUE_URL", stack.resources.queue_url)
    assert main(["simulate", "--events", "25", "--rate", "1000", "--via", via]) == 0
    assert queued(stack) == 25
    assert "published 25 events (0 refused)" in capsys.readouterr().out
    [message] = stack.sqs.receive_message(QueueUrl=stack.resources.queue_url)["Messages"]
    envelope = json.loads(message["Body"])
    assert envelope["source"] == "aws.ecs"
    assert envelope["detail"]["version"] >= 1


def test_simulate_via_eventbridge_redelivers_service_events_with_their_own_id(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A simulated duplicate is ECS's: same event id, so one round's service events count once."""
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    monkeypatch.setenv("ECSWATCH_SQS_QUEUE_URL", stack.resources.queue_url)
    round_size = len(generate(tasks=8, container_instances=1, with_service_events=True).envelopes)
    assert main(["simulate", "--events", str(round_size), "--rate", "1000"]) == 0
    envelopes = [json.loads(body) for body in drain(stack)]
    assert len(envelopes) == round_size
    service = collections.Counter(e["id"] for e in envelopes if e["detail-type"] in ID_GUARDED)
    assert len(service) == 12  # a deployment and two actions for each of four services
    assert set(service.values()) == {2}


def test_simulate_rejects_a_non_positive_rate(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    assert main(["simulate", "--rate", "0"]) == 2
    assert "--rate" in capsys.readouterr().err
