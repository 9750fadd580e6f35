"""`ecswatch report` against the emulator (its tables, filled by a running daemon)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from ecswatch.cli import main
from ecswatch.commands.report import build_report
from ecswatch.daemon.state.dynamo import serialize_item
from ecswatch.dev.simulate import DEFAULT_SERVICES, generate, service_events
from tests.commands.stopped import task_item
from tests.conftest import Running, Stack, wait_for


@pytest.fixture
def env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    return stack


def test_report_groups_failed_starts_per_service_with_reasons(
    env: Stack, start_daemon: Callable[..., Running], capsys: pytest.CaptureFixture[str]
) -> None:
    stream = generate(tasks=16, copies=1, seed=6, container_instances=2)
    running = start_daemon(workers={"count": 1})
    env.send(*stream.bodies())
    env.send_events(service_events(DEFAULT_SERVICES, datetime.now(UTC)))
    wait_for(lambda: env.queue_counts() == (0, 0) and running.processed() >= len(stream.envelopes))
    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_group = {(s["cluster"], s["group"]): s for s in report["services"]}
    billing = by_group[("prod", "service:billing")]
    failed = sum(stream.truth.failed_starts.values())
    assert billing["failed_to_start"] == failed
    assert billing["stop_codes"] == {"TaskFailedToStart": failed}
    assert billing["reasons"] == {"CannotPullContainerError": failed}
    assert billing["task_start_impaired"] is True
    assert report["services"][0]["group"] == "service:billing"  # worst first
    statuses = stream.truth.tasks_by_status()
    assert sum(s["running"] for s in report["services"]) == statuses["RUNNING"]
    assert sum(s["stopped"] for s in report["services"]) == statuses["STOPPED"]
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "billing" in text
    assert "CannotPullContainerError ×" in text


def test_report_window_excludes_old_failures(
    env: Stack, start_daemon: Callable[..., Running], capsys: pytest.CaptureFixture[str]
) -> None:
    old = generate(tasks=8, copies=1, seed=6, now=datetime.now(UTC) - timedelta(hours=30))
    running = start_daemon()
    env.send(*old.bodies())
    wait_for(lambda: env.queue_counts() == (0, 0) and running.processed() >= len(old.envelopes))
    assert main(["report", "--json", "--hours", "24"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(s["failed_to_start"] for s in report["services"]) == 0
    assert main(["report", "--json", "--hours", "48"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert sum(s["failed_to_start"] for s in report["services"]) == sum(
        old.truth.failed_starts.values()
    )


def test_report_leaves_out_deregistered_instances_and_expired_services(env: Stack) -> None:
    """Gone things are not news: an INACTIVE instance (it carries expiresAt) and a service past
    its expiresAt (deleted) stay out of the report; a draining instance and a live service stay."""
    now = datetime.now(UTC)
    config = env.config.dynamodb
    arn = "arn:aws:ecs:eu-west-1:111122223333:container-instance/prod/"
    for suffix, status, expires in (("gone", "INACTIVE", now + timedelta(days=7)),
                                    ("drain", "DRAINING", None)):  # fmt: skip
        item = {"containerInstanceArn": {"S": arn + suffix}, "status": {"S": status},
                "clusterArn": {"S": "arn:aws:ecs:eu-west-1:111122223333:cluster/prod"},
                "version": {"N": "3"}}  # fmt: skip
        if expires:
            item["expiresAt"] = {"N": str(int(expires.timestamp()))}
        env.dynamodb.put_item(TableName=config.container_instance_table, Item=item)
    service = "arn:aws:ecs:eu-west-1:111122223333:service/prod/"
    for name, expires in (("deleted", now - timedelta(hours=1)), ("live", now + timedelta(days=3))):
        env.dynamodb.put_item(
            TableName=config.service_table,
            Item={"serviceArn": {"S": service + name}, "clusterName": {"S": "prod"},
                  "serviceName": {"S": name}, "taskStartImpaired": {"BOOL": True},
                  "expiresAt": {"N": str(int(expires.timestamp()))}},
        )  # fmt: skip
    report = build_report(env.dynamodb, env.config, hours=24, now=now)
    assert [i["containerInstanceArn"] for i in report.unhealthy_instances] == [arn + "drain"]
    assert [s.group for s in report.services] == ["service:live"]


def test_report_shows_deaths_by_cause_crash_loops_oom_kills_and_start_phases(
    env: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """From the task table alone: web crash-loops on OOM kills (three within 12 minutes, each
    within 10 minutes of starting), api only scales in; the old death is outside the window."""
    now = datetime.now(UTC)
    start = now - timedelta(hours=2)
    items = [
        task_item("oom_kill", task_id=f"web{i}", stopped_at=start + timedelta(minutes=6 * i))
        for i in range(3)
    ]
    items += [
        task_item(
            "scheduler_scale_in",
            task_id=f"api{i}",
            group="service:api",
            stopped_at=start + timedelta(minutes=i),
        )
        for i in range(4)
    ]
    items.append(task_item("oom_kill", task_id="old", stopped_at=now - timedelta(hours=30)))
    for item in items:
        env.dynamodb.put_item(
            TableName=env.config.dynamodb.task_table, Item=serialize_item(item | {"version": 5})
        )
    assert main(["report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_group = {s["group"]: s["deaths"] for s in report["services"]}
    web, api = by_group["service:web"], by_group["service:api"]
    assert (web["by_cause"], web["failures"], web["quick_failures"]) == ({"oom": 3}, 3, 3)
    assert web["crash_looping"] is True
    assert web["oom_kills"] == {"worker": 3}
    assert web["start_phases"]["pull"]["count"] == 3
    assert web["start_phases"]["pull"]["p50"] == pytest.approx(5.0, rel=0.01)
    assert (api["by_cause"], api["failures"], api["crash_looping"]) == ({"scheduler": 4}, 0, False)
    assert report["services"][0]["group"] == "service:web"  # failures first
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    assert "oom* ×3" in text
    assert "scheduler ×4" in text
    assert "prod/web" in text.split("Crash-looping services")[1].split("OOM kills")[0]
    assert "worker ×3" in text
