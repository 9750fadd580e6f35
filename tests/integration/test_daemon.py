"""The daemon end to end against moto's server over HTTP: items, outcomes, metrics, endpoints."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog.testing

from ecswatch.daemon.pipeline.queue import REASON_ATTRIBUTE, SOURCE_ID_ATTRIBUTE
from ecswatch.dev.emulator import SQS_MISSING_QUEUE
from ecswatch.dev.simulate import DEFAULT_SERVICES, generate
from ecswatch.logging import configure_logging
from tests.conftest import Running, Stack, http_get, wait_for

# Recent: events older than stopped_task_ttl_days (7) are refused as `expired`.
EVENT_TIME = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")

TASK = "ECS Task State Change"
ARN = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef"


def task(version: int, status: str, **extra: Any) -> dict[str, Any]:
    detail = {
        "taskArn": ARN,
        "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        "group": "service:billing",
        "lastStatus": status,
        "version": version,
        **extra,
    }
    return {
        "version": "0",
        "id": f"id-{version}-{status}",
        "detail-type": TASK,
        "source": "aws.ecs",
        "time": EVENT_TIME,
        "region": "us-east-1",
        "resources": [ARN],
        "detail": detail,
    }


def drained(stack: Stack, running: Running, expected: int) -> Callable[[], bool]:
    """True once `expected` events were processed and the queue holds nothing."""
    return lambda: running.processed() >= expected and stack.queue_counts() == (0, 0)


def test_applied_event_lands_as_an_item_with_bookkeeping(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon()
    stack.send_events([task(3, "RUNNING", cpuShare=0.25, startedAt="2026-11-23T11:59:00Z")])
    wait_for(drained(stack, running, 1))
    item = stack.task_items()[ARN]
    assert item["version"] == 3
    assert item["lastStatus"] == "RUNNING"
    assert str(item["cpuShare"]) == "0.25"
    assert item["eventId"] == "id-3-RUNNING"
    assert item["eventTime"] == EVENT_TIME
    assert item["writtenAt"].startswith("20")
    assert "expiresAt" not in item
    assert running.events("applied") == 1
    assert running.value("ecswatch_messages_received_total") == 1
    assert running.value("ecswatch_event_lag_seconds_count") == 1


def test_duplicate_and_stale_events_are_classified_and_deleted(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon(workers={"count": 1})
    stack.send_events([task(5, "RUNNING")])
    wait_for(drained(stack, running, 1))
    stack.send_events([task(5, "RUNNING"), task(2, "PENDING")])
    wait_for(drained(stack, running, 3))
    assert running.events("applied") == 1
    assert running.events("duplicate") == 1
    assert running.events("stale") == 1
    assert stack.task_items()[ARN]["version"] == 5


def test_ignored_detail_types_are_counted_and_deleted(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon()
    action = {
        "detail-type": "ECS Capacity Provider Something New",
        "source": "aws.ecs",
        "detail": {"eventName": "WHATEVER"},
    }
    stack.send_events([action])
    wait_for(drained(stack, running, 1))
    assert running.events("ignored", "other") == 1
    assert stack.task_items() == {}


def test_invalid_messages_go_to_the_dlq_with_their_reason(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon()
    bad_version = json.dumps(task(1, "PENDING") | {"detail": {"taskArn": ARN, "version": "1"}})
    stack.send("this is not json", bad_version)
    wait_for(drained(stack, running, 2))
    dead = stack.dead_letters()
    reasons = {m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"]: m for m in dead}
    assert set(reasons) == {"not_json", "bad_version"}
    assert reasons["not_json"]["Body"] == "this is not json"
    assert reasons["not_json"]["MessageAttributes"][SOURCE_ID_ATTRIBUTE]["StringValue"]
    assert running.value("ecswatch_dead_lettered_total", reason="not_json") == 1
    assert running.value("ecswatch_dead_lettered_total", reason="bad_version") == 1
    assert running.events("invalid", "other") == 1
    assert running.events("invalid") == 1


def test_an_item_dynamodb_rejects_is_dead_lettered_not_retried_forever(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon()
    stack.send_events([task(1, "PENDING", blob="x" * 300_000, blob2="y" * 200_000)])
    wait_for(drained(stack, running, 1))
    [dead] = stack.dead_letters()
    # Over DynamoDB's 400 KB item limit (events reach SQS's 1 MiB): its own reason.
    assert dead["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] == "item_too_large"
    assert running.value("ecswatch_dead_lettered_total", reason="item_too_large") == 1
    assert stack.task_items() == {}


def test_without_a_dlq_invalid_messages_stay_for_the_redrive_policy(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon(sqs={"dead_letter_queue_url": "", "visibility_timeout": 5})
    stack.send("{broken")
    wait_for(lambda: running.events("invalid", "other") >= 1)
    assert stack.queue_counts() == (0, 1)  # still there, invisible, not deleted
    assert stack.dead_letters() == []


def test_shuffled_duplicated_lifecycles_end_at_the_highest_version(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    stream = generate(tasks=24, container_instances=3, copies=2, seed=11)
    running = start_daemon()
    stack.send(*stream.bodies())
    wait_for(drained(stack, running, len(stream.envelopes)), timeout=60)
    tasks = stack.task_items()
    instances = stack.items(stack.config.dynamodb.container_instance_table)
    stored = {
        arn: (int(i["version"]), i.get("lastStatus") or i.get("status"))
        for arn, i in (tasks | instances).items()
    }
    assert stored == stream.truth.final
    for item in tasks.values():
        assert (item["lastStatus"] == "STOPPED") == ("expiresAt" in item)
        env = item["overrides"]["containerOverrides"][0]["environment"]
        assert {e["value"] for e in env} == {"***"}
    # Each version is applied at most once; every delivery is accounted for.
    kinds = ("ECS Task State Change", "ECS Container Instance State Change")
    applied = sum(running.events("applied", kind) for kind in kinds)
    accounted = sum(running.events(o, k) for o in ("applied", "duplicate", "stale") for k in kinds)
    assert len(stream.truth.final) <= applied <= stream.truth.distinct_events
    assert accounted >= len(stream.envelopes)
    assert running.failed_starts() == stream.truth.failed_starts
    failing = {f"service:{s.name}" for s in DEFAULT_SERVICES if s.fails_to_start}
    assert {group for (_, group, _) in stream.truth.failed_starts} == failing


def test_endpoints_answer_health_readiness_and_metrics(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    running = start_daemon()
    assert http_get(running.url + "/healthz")[0] == 200
    wait_for(lambda: http_get(running.url + "/readyz")[0] == 200)
    status, text = http_get(running.url + "/metrics")
    assert status == 200
    for name in (
        "ecswatch_tasks_pending_to_stopped_total",
        "ecswatch_messages_received_total",
        'ecswatch_events_total{detail_type="ECS Task State Change",outcome="applied"}',
        "ecswatch_messages_in_flight",
        "ecswatch_last_receive_timestamp_seconds",
        'ecswatch_build_info{version="',
    ):
        assert name in text, name
    assert http_get(running.url + "/nope")[0] == 404


def test_readiness_fails_while_the_queue_cannot_be_read(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    # The queue vanishes for ReceiveMessage only (a missing queue at start exits 2 instead).
    stack.emulator.faults.sqs_operations = ("ReceiveMessage",)
    stack.emulator.faults.sqs_error = SQS_MISSING_QUEUE
    running = start_daemon()
    time.sleep(3)  # several receive attempts, each failing
    status, text = http_get(running.url + "/readyz")
    assert status == 503
    assert "no successful receive" in text
    assert http_get(running.url + "/healthz")[0] == 200  # alive, just not ready
    # Each fetcher (2 for 4 workers) backs off (0.5 s, 1 s, 2 s, ... with jitter) instead of
    # spinning: a spinning loop would have sent hundreds of calls in 3 s.
    attempts = stack.emulator.injector.requests["AmazonSQS.ReceiveMessage"]
    assert 2 <= attempts <= 30


def test_debug_logs_name_each_message_and_never_show_secrets(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """At DEBUG, one line per message names it (id, ARN, version, outcome); no secret shows."""
    stream = generate(tasks=4, copies=1, seed=8, container_instances=0)
    configure_logging("DEBUG", "json")
    with structlog.testing.capture_logs() as logs:
        running = start_daemon()
        stack.send(*stream.bodies())
        wait_for(drained(stack, running, len(stream.envelopes)))
    processed = [entry for entry in logs if entry["event"] == "message_processed"]
    assert len(processed) >= len(stream.envelopes)
    for entry in processed:
        assert {"message_id", "arn", "version", "outcome"} <= set(entry)
    assert "hunter2" not in repr(logs)
    assert "hunter2" not in repr(stack.task_items())
    assert "hunter2" in repr(stream.envelopes)  # the secret really was in the events


def test_info_logs_each_failed_start_but_not_each_message(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """At INFO an operator sees the tasks that never started, not a line per event."""
    stream = generate(tasks=8, copies=1, seed=8, container_instances=0)
    configure_logging("INFO", "json")
    with structlog.testing.capture_logs() as logs:
        running = start_daemon()
        stack.send(*stream.bodies())
        wait_for(drained(stack, running, len(stream.envelopes)))
    events = [entry["event"] for entry in logs]
    assert "message_processed" not in events
    failed = [entry for entry in logs if entry["event"] == "task_failed_to_start"]
    assert len(failed) == sum(stream.truth.failed_starts.values()) > 0
    assert {"arn", "cluster", "group", "stop_code"} <= set(failed[0])
