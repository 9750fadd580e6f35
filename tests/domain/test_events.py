"""Pure event rules: what is valid, what is stored, what is redacted, what counts."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from ecswatch.dev.simulate import DEFAULT_SERVICES, task_events
from ecswatch.domain.events import (
    REDACTED,
    Event,
    Ignored,
    Invalid,
    Resource,
    build_item,
    cluster_name,
    event_lag_seconds,
    failed_start,
    parse_message,
)

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def task_body(**detail: Any) -> str:
    base = {
        "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/abc",
        "clusterArn": "arn:aws:ecs:us-east-1:1:cluster/prod",
        "group": "service:web",
        "lastStatus": "PENDING",
        "version": 2,
    }
    base.update(detail)
    return json.dumps(
        {
            "source": "aws.ecs",
            "detail-type": "ECS Task State Change",
            "id": "e-1",
            "time": "2026-11-23T11:59:58Z",
            "detail": base,
        }
    )


def parsed_event(body: str) -> Event:
    parsed = parse_message(body)
    assert isinstance(parsed, Event), parsed
    return parsed


def test_task_state_change_parses_to_an_event_keyed_on_task_arn() -> None:
    event = parsed_event(task_body())
    assert event.resource is Resource.TASK
    assert event.arn == "arn:aws:ecs:us-east-1:1:task/prod/abc"
    assert event.version == 2
    assert (event.event_id, event.event_time) == ("e-1", "2026-11-23T11:59:58Z")


def test_container_instance_change_is_keyed_on_container_instance_arn() -> None:
    body = json.dumps(
        {
            "source": "aws.ecs",
            "detail-type": "ECS Container Instance State Change",
            "detail": {"containerInstanceArn": "arn:ci", "version": 9, "status": "ACTIVE"},
        }
    )
    event = parsed_event(body)
    assert (event.resource, event.arn, event.version) == (Resource.CONTAINER_INSTANCE, "arn:ci", 9)


def test_envelope_without_account_or_with_unknown_keys_is_accepted() -> None:
    envelope = json.loads(task_body())
    envelope["ingestion-time"] = "x"
    envelope["detail"]["somethingNew"] = {"nested": [1, 2]}
    event = parsed_event(json.dumps(envelope))
    assert event.detail["somethingNew"] == {"nested": [1, 2]}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("not json", "not_json"),
        ("", "not_json"),
        ('{"a": NaN}', "not_json"),
        ("[1, 2]", "not_envelope"),
        (json.dumps({"source": "aws.ec2", "detail-type": "x", "detail": {}}), "not_ecs"),
        (json.dumps({"source": "aws.ecs", "detail-type": "ECS Task State Change"}), "not_envelope"),
        (json.dumps({"source": "aws.ecs", "detail": {}}), "not_envelope"),
        (task_body(taskArn=None), "missing_arn"),
        (task_body(taskArn=""), "missing_arn"),
        (task_body(version="3"), "bad_version"),
        (task_body(version=3.5), "bad_version"),
        (task_body(version=True), "bad_version"),
        (task_body(version=-1), "bad_version"),
        (task_body(version=10**40), "bad_version"),
        (task_body(version=None), "bad_version"),
    ],
)
def test_malformed_bodies_are_invalid_with_a_reason(body: str, reason: str) -> None:
    parsed = parse_message(body)
    assert isinstance(parsed, Invalid)
    assert parsed.reason == reason
    assert parsed.message


def test_invalid_detail_type_label_never_echoes_arbitrary_input() -> None:
    body = json.dumps({"source": "aws.ec2", "detail-type": "x" * 500, "detail": {}})
    parsed = parse_message(body)
    assert isinstance(parsed, Invalid)
    assert parsed.detail_type == "other"


def test_other_ecs_detail_types_are_ignored_under_one_label() -> None:
    body = json.dumps({"source": "aws.ecs", "detail-type": "ECS Something New", "detail": {}})
    parsed = parse_message(body)
    assert isinstance(parsed, Ignored)
    assert parsed.detail_type == "other"


def test_floats_become_decimals_never_float() -> None:
    event = parsed_event(task_body(cpuShare=0.1, nested={"d": [1.25, 3]}))
    assert event.detail["cpuShare"] == Decimal("0.1")
    assert event.detail["nested"] == {"d": [Decimal("1.25"), 3]}
    assert not isinstance(event.detail["nested"]["d"][0], float)


def test_container_override_environment_values_are_redacted() -> None:
    body = json.dumps(task_events_envelope())
    event = parsed_event(body)
    env = event.detail["overrides"]["containerOverrides"][0]["environment"]
    assert {e["name"] for e in env} == {"DATABASE_PASSWORD", "LOG_LEVEL"}
    assert all(e["value"] == REDACTED for e in env)
    assert "hunter2" not in json.dumps(event.detail)


def test_redaction_can_be_switched_off() -> None:
    event = parse_message(json.dumps(task_events_envelope()), redact=False)
    assert isinstance(event, Event)
    assert "hunter2" in json.dumps(event.detail)


def test_redaction_tolerates_odd_override_shapes() -> None:
    for overrides in (
        {"containerOverrides": "x"},
        [1],
        {"containerOverrides": [1, {"environment": 3}]},
    ):
        parsed_event(task_body(overrides=overrides))


def task_events_envelope() -> dict[str, Any]:
    return task_events(random.Random(1), DEFAULT_SERVICES[0], NOW)[0]


def test_item_keeps_every_detail_field_and_adds_bookkeeping() -> None:
    event = parsed_event(task_body(lastStatus="RUNNING", updatedAt="2026-11-23T11:59:57Z"))
    item = build_item(event, now=NOW, stopped_task_ttl_days=7)
    assert item["lastStatus"] == "RUNNING"
    assert item["updatedAt"] == "2026-11-23T11:59:57Z"  # ECS's own, untouched
    assert item["version"] == 2
    assert item["eventId"] == "e-1"
    assert item["eventTime"] == "2026-11-23T11:59:58Z"
    assert item["writtenAt"] == "2026-11-23T12:00:00.000+00:00"
    assert "expiresAt" not in item


def test_only_stopped_tasks_get_expires_at() -> None:
    stopped = parsed_event(task_body(lastStatus="STOPPED"))
    item = build_item(stopped, now=NOW, stopped_task_ttl_days=7)
    assert item["expiresAt"] == int(NOW.timestamp()) + 7 * 86400
    assert "expiresAt" not in build_item(stopped, now=NOW, stopped_task_ttl_days=0)


def instance_event(status: str) -> Event:
    return parsed_event(
        json.dumps(
            {
                "source": "aws.ecs",
                "detail-type": "ECS Container Instance State Change",
                "detail": {"containerInstanceArn": "arn:ci", "version": 9, "status": status},
            }
        )
    )


def test_deregistered_and_failed_container_instances_get_expires_at_live_ones_not() -> None:
    """INACTIVE (deregistered) and REGISTRATION_FAILED never change again: they expire."""
    for status in ("INACTIVE", "REGISTRATION_FAILED"):
        item = build_item(instance_event(status), now=NOW, stopped_task_ttl_days=7)
        assert item["expiresAt"] == int(NOW.timestamp()) + 7 * 86400
    for status in ("ACTIVE", "DRAINING", "REGISTERING", "DEREGISTERING"):
        assert "expiresAt" not in build_item(
            instance_event(status), now=NOW, stopped_task_ttl_days=7
        )
    assert "expiresAt" not in build_item(
        instance_event("INACTIVE"), now=NOW, stopped_task_ttl_days=0
    )


def test_pending_to_stopped_counts_a_task_that_never_started() -> None:
    event = parsed_event(task_body(lastStatus="STOPPED", stopCode="TaskFailedToStart"))
    assert failed_start(event, None) is not None
    assert failed_start(event, "PENDING") == failed_start(event, None)
    labels = failed_start(event, "PROVISIONING")
    assert labels is not None
    assert (labels.cluster, labels.group, labels.stop_code) == (
        "prod",
        "service:web",
        "TaskFailedToStart",
    )


def test_pending_to_stopped_ignores_started_tasks_and_already_stopped_items() -> None:
    started = parsed_event(task_body(lastStatus="STOPPED", startedAt="2026-11-23T11:00:00Z"))
    assert failed_start(started, "RUNNING") is None
    never_started = parsed_event(task_body(lastStatus="STOPPED"))
    assert failed_start(never_started, "STOPPED") is None
    assert failed_start(parsed_event(task_body(lastStatus="PENDING")), None) is None


def test_pending_to_stopped_labels_default_to_empty_strings() -> None:
    event = parsed_event(task_body(lastStatus="STOPPED", group=None, clusterArn=None))
    labels = failed_start(event, None)
    assert labels is not None
    assert (labels.cluster, labels.group, labels.stop_code) == ("", "", "")


def test_cluster_name_from_arn_or_name() -> None:
    assert cluster_name("arn:aws:ecs:us-east-1:1:cluster/prod") == "prod"
    assert cluster_name("prod") == "prod"
    assert cluster_name(None) == ""


def test_event_lag_from_envelope_time() -> None:
    assert event_lag_seconds("2026-11-23T11:59:58Z", NOW) == 2.0
    assert event_lag_seconds("", NOW) is None
    assert event_lag_seconds("yesterday", NOW) is None
