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
    assert {c.kind for c in first.changes} == {
        "queue", "table", "ttl", "pitr", "rule", "target", "policy"}  # fmt: skip
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
        "ECSServiceEventIds": "eventKey",
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


def test_bootstrap_enables_point_in_time_recovery_on_every_table(
    fresh: Config, emulator: Emulator
) -> None:
    """As the CloudFormation stack does: state tables are restorable."""
    clients = make_clients(emulator.url)
    bootstrap(fresh, **clients)
    for table in ("ECSTaskState", "ECSCtrInstanceState", "ECSServiceState"):
        backups = clients["dynamodb"].describe_continuous_backups(TableName=table)
        pitr = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
        assert pitr["PointInTimeRecoveryStatus"] == "ENABLED"


def test_a_central_bus_is_created_with_a_policy_admitting_the_organization_and_accounts(
    fresh: Config, emulator: Emulator
) -> None:
    """bootstrap.event_bus_name other than default: the bus, its policy, the rule on it."""
    clients = make_clients(emulator.url)
    events = clients["events"]
    config = dataclasses.replace(fresh, bootstrap=dataclasses.replace(
        fresh.bootstrap, event_bus_name="ecs-org", organization_id="o-a1b2c3d4e5",
        member_account_ids="111111111111, 222222222222"))  # fmt: skip
    # Someone else's statement on the same bus survives ours.
    events.create_event_bus(Name="ecs-org")
    events.put_permission(EventBusName="ecs-org", Action="events:PutEvents",
                          Principal="333333333333", StatementId="theirs")  # fmt: skip
    first = bootstrap(config, **clients)
    assert {(c.kind, c.action) for c in first.changes if c.kind.startswith("bus")} == {
        ("bus", "exists"), ("bus-policy", "created")}  # fmt: skip
    bus = events.describe_event_bus(Name="ecs-org")
    statements = {s["Sid"]: s for s in json.loads(bus["Policy"])["Statement"]}
    assert set(statements) == {"theirs", "ecswatch-organization", "ecswatch-member-accounts"}
    org = statements["ecswatch-organization"]
    assert org["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}
    assert (org["Principal"], org["Action"], org["Resource"]) == ("*", "events:PutEvents",
                                                                  bus["Arn"])  # fmt: skip
    assert statements["ecswatch-member-accounts"]["Principal"] == {"AWS": [
        "arn:aws:iam::111111111111:root", "arn:aws:iam::222222222222:root"]}  # fmt: skip
    assert events.describe_rule(Name=config.bootstrap.rule_name, EventBusName="ecs-org")["Arn"]
    again = bootstrap(config, **clients)
    assert {c.action for c in again.changes} == {"exists"}
    # Fewer members: our statement follows the configuration, theirs stays.
    fewer = dataclasses.replace(config, bootstrap=dataclasses.replace(
        config.bootstrap, organization_id=""))  # fmt: skip
    bootstrap(fewer, **clients)
    sids = {s["Sid"] for s in json.loads(events.describe_event_bus(Name="ecs-org")["Policy"])[
        "Statement"]}  # fmt: skip
    assert sids == {"theirs", "ecswatch-member-accounts"}


def test_a_new_central_bus_is_created(fresh: Config, emulator: Emulator) -> None:
    """A bus that does not exist yet is made, and events put on it reach the queue."""
    clients = make_clients(emulator.url)
    config = dataclasses.replace(
        fresh, bootstrap=dataclasses.replace(fresh.bootstrap, event_bus_name="ecs-central")
    )
    result = bootstrap(config, **clients)
    assert ("bus", "ecs-central", "created") in {(c.kind, c.name, c.action) for c in result.changes}
    clients["events"].put_events(Entries=[{"Source": "aws.ecs", "DetailType": "ECS Task State "
        "Change", "Detail": "{}", "EventBusName": "ecs-central"}])  # fmt: skip
    got = clients["sqs"].receive_message(QueueUrl=result.queue_url, WaitTimeSeconds=1)
    assert len(got.get("Messages", [])) == 1


def test_fifo_queue_names_make_fifo_queues_and_a_target_with_a_message_group(
    fresh: Config, emulator: Emulator
) -> None:
    """EventBridge → SQS FIFO needs content-based deduplication and the target's group id."""
    clients = make_clients(emulator.url)
    names = {"queue_name": "org-events.fifo", "dead_letter_queue_name": "org-events-dlq.fifo"}
    config = dataclasses.replace(fresh, bootstrap=dataclasses.replace(fresh.bootstrap, **names))
    result = bootstrap(config, **clients)
    for url in (result.queue_url, result.dead_letter_queue_url):
        attributes = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
        assert attributes["Attributes"]["FifoQueue"] == "true"
        assert attributes["Attributes"]["ContentBasedDeduplication"] == "true"
    [target] = clients["events"].list_targets_by_rule(Rule=config.bootstrap.rule_name)["Targets"]
    assert target["SqsParameters"] == {"MessageGroupId": "ecswatch"}
    clients["events"].put_events(Entries=[{"Source": "aws.ecs", "DetailType": "x", "Detail": "{}"}])
    got = clients["sqs"].receive_message(QueueUrl=result.queue_url, WaitTimeSeconds=1)
    assert len(got["Messages"]) == 1
    mixed = dataclasses.replace(config, bootstrap=dataclasses.replace(
        config.bootstrap, dead_letter_queue_name="plain-dlq"))  # fmt: skip
    with pytest.raises(BootstrapError, match="both be FIFO"):
        bootstrap(mixed, **clients)
