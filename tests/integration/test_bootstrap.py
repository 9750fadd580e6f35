"""`ecswatch bootstrap` against the emulator: creates what is missing, twice is a no-op."""

from __future__ import annotations

import dataclasses
import json

import pytest

from ecswatch.cli import main
from ecswatch.commands.bootstrap import POLICY_SID, BootstrapError, bootstrap
from ecswatch.config import Config, load_config
from ecswatch.dev.emulator import Emulator
from tests.conftest import REGION, make_clients


@pytest.fixture
def fresh(emulator: Emulator) -> Config:
    emulator.reset()
    return load_config(
        None,
        {"ECSWATCH_AWS_ENDPOINT_URL": emulator.url, "ECSWATCH_AWS_REGION": REGION},
        require_queue=False,
    )


def test_bootstrap_creates_everything_then_is_a_no_op(fresh: Config, emulator: Emulator) -> None:
    clients = make_clients(emulator.url)
    first = bootstrap(fresh, **clients)
    assert {c.action for c in first.changes} == {"created"}
    assert {c.kind for c in first.changes} == {"queue", "table", "ttl", "rule", "target", "policy"}
    second = bootstrap(fresh, **clients)
    assert {c.action for c in second.changes} == {"exists"}
    assert (second.queue_url, second.dead_letter_queue_url) == (
        first.queue_url,
        first.dead_letter_queue_url,
    )

    sqs, dynamodb, events = clients["sqs"], clients["dynamodb"], clients["events"]
    attributes = sqs.get_queue_attributes(QueueUrl=first.queue_url, AttributeNames=["All"])[
        "Attributes"
    ]
    dlq_arn = sqs.get_queue_attributes(
        QueueUrl=first.dead_letter_queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": 5,
    }
    assert attributes["VisibilityTimeout"] == "60"
    [statement] = json.loads(attributes["Policy"])["Statement"]
    assert statement["Sid"] == POLICY_SID
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": first.rule_arn}}

    keys = {
        "ECSTaskState": "taskArn",
        "ECSCtrInstanceState": "containerInstanceArn",
        "ECSServiceState": "serviceArn",
    }
    for table, key in keys.items():
        description = dynamodb.describe_table(TableName=table)["Table"]
        assert description["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert description["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert description["SSEDescription"]["Status"] == "ENABLED"
        ttl = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expiresAt")

    rule = events.describe_rule(Name="ecswatch-ecs-events")
    assert json.loads(rule["EventPattern"]) == {"source": ["aws.ecs"]}
    assert rule["State"] == "ENABLED"
    targets = events.list_targets_by_rule(Rule="ecswatch-ecs-events")["Targets"]
    assert [t["Arn"] for t in targets] == [attributes["QueueArn"]]


def test_a_changed_max_receive_count_is_updated(fresh: Config, emulator: Emulator) -> None:
    clients = make_clients(emulator.url)
    bootstrap(fresh, **clients)
    changed = dataclasses.replace(
        fresh, bootstrap=dataclasses.replace(fresh.bootstrap, max_receive_count=9)
    )
    result = bootstrap(changed, **clients)
    changes = [str(c) for c in result.changes if c.action != "exists"]
    assert changes == ["updated  redrive ecswatch-events"]
    attributes = clients["sqs"].get_queue_attributes(
        QueueUrl=result.queue_url, AttributeNames=["RedrivePolicy", "Policy"]
    )["Attributes"]
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 9
    assert json.loads(attributes["Policy"])["Statement"][0]["Sid"] == POLICY_SID


def test_a_table_with_another_key_is_a_clear_conflict(fresh: Config, emulator: Emulator) -> None:
    clients = make_clients(emulator.url)
    clients["dynamodb"].create_table(
        TableName="ECSTaskState",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    with pytest.raises(BootstrapError, match=r"table ECSTaskState exists with key schema"):
        bootstrap(fresh, **clients)


def test_existing_policy_statements_of_others_are_kept(fresh: Config, emulator: Emulator) -> None:
    clients = make_clients(emulator.url)
    url = clients["sqs"].create_queue(QueueName="ecswatch-events")["QueueUrl"]
    other = {"Sid": "ops", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sqs:*"}
    clients["sqs"].set_queue_attributes(
        QueueUrl=url, Attributes={"Policy": json.dumps({"Statement": [other]})}
    )
    bootstrap(fresh, **clients)
    policy = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])
    sids = [s["Sid"] for s in json.loads(policy["Attributes"]["Policy"])["Statement"]]
    assert sids == ["ops", POLICY_SID]


def test_cli_bootstrap_reports_changes_and_the_urls_to_configure(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.reset()
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", emulator.url)
    assert main(["bootstrap"]) == 0
    out = capsys.readouterr().out
    assert "created  queue   ecswatch-events" in out
    assert "ECSWATCH_SQS_QUEUE_URL=http" in out
    assert main(["bootstrap"]) == 0
    assert "created" not in capsys.readouterr().out


def test_cli_bootstrap_conflict_exits_1_without_a_traceback(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    emulator.reset()
    make_clients(emulator.url)["dynamodb"].create_table(
        TableName="ECSCtrInstanceState",
        KeySchema=[{"AttributeName": "arn", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "arn", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", emulator.url)
    assert main(["bootstrap"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ecswatch: bootstrap: table ECSCtrInstanceState exists")
    assert "Traceback" not in err
