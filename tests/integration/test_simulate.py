"""`ecswatch simulate`: steady simulated traffic through EventBridge (or SQS) into the queue."""

from __future__ import annotations

import json

import pytest

from ecswatch.cli import main
from tests.conftest import Stack


def queued(stack: Stack) -> int:
    return sum(stack.queue_counts())


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


def test_simulate_rejects_a_non_positive_rate(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    assert main(["simulate", "--rate", "0"]) == 2
    assert "--rate" in capsys.readouterr().err
