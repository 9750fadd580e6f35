"""`ecswatch task` on a seeded task table (moto's server over HTTP): one task's life by ARN or id,
and the one-line errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from ecswatch.cli import main
from ecswatch.daemon.state.dynamo import serialize_item
from tests.commands.stopped import task_item
from tests.conftest import Stack

NOW = datetime.now(UTC)
OOM_TASK = "4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"


@pytest.fixture
def seeded(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """Forty tasks of two services, one of them the OOM-killed task the tests look up."""
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    items = [
        task_item(
            "scheduler_scale_in",
            task_id=f"{i:032x}",
            stopped_at=NOW - timedelta(hours=1),
            cluster="prod" if i % 2 else "staging",
        )
        for i in range(40)
    ]
    items.append(task_item("oom_kill", task_id=OOM_TASK, stopped_at=NOW - timedelta(minutes=5)))
    for item in items:
        stack.dynamodb.put_item(
            TableName=stack.config.dynamodb.task_table, Item=serialize_item(item | {"version": 7})
        )
    return stack


def test_task_by_arn_tells_its_phases_containers_and_cause(
    seeded: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every phase with its time and length, each container's exit code and reason, the cause."""
    arn = f"arn:aws:ecs:us-west-2:123456789012:task/prod/{OOM_TASK}"
    assert main(["task", arn, "--json"]) == 0
    life = json.loads(capsys.readouterr().out)
    assert life["task_arn"] == arn
    assert (life["cluster"], life["group"], life["last_status"]) == (
        "prod",
        "service:web",
        "STOPPED",
    )
    assert (life["cause"], life["failure"]) == ("oom", True)
    assert life["timeline"][0]["field"] == "createdAt"
    assert life["timeline"][-1]["field"] == "stoppedAt"
    assert life["phases"]["running"] == pytest.approx(420.5)
    assert set(life["phases"]) >= {"provisioning", "pull", "start", "running"}
    assert life["containers"] == [
        {"name": "worker", "last_status": "STOPPED", "exit_code": 137,
         "reason": "OutOfMemoryError: Container killed due to memory usage", "oom": True},
        {"name": "envoy", "last_status": "STOPPED", "exit_code": 143, "reason": None,
         "oom": False},
    ]  # fmt: skip
    assert life["version"] == 7
    assert main(["task", arn]) == 0
    text = capsys.readouterr().out
    assert "cause oom (the service's own failure)" in text
    assert "OutOfMemoryError: Container killed due to memory usage  [OOM kill]" in text
    assert "started (RUNNING)" in text


@pytest.mark.parametrize("ref", [OOM_TASK, f"prod/{OOM_TASK}"])
def test_task_by_id_or_cluster_and_id_is_found_by_scanning(
    seeded: Stack, ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", ref, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["task_arn"].endswith(f"/prod/{OOM_TASK}")


@pytest.mark.parametrize(
    "ref",
    [
        "e" * 32,  # no such task
        f"staging/{OOM_TASK}",  # the id, but in another cluster
        f"arn:aws:ecs:us-west-2:123456789012:task/prod/{'f' * 32}",
    ],
)
def test_a_task_not_in_the_table_is_one_line_and_exit_1(
    seeded: Stack, ref: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["task", ref]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"ecswatch: task: no task {ref} in table ECSTaskState\n"


def test_not_a_task_reference_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["task", "arn:aws:ecs:us-west-2:123456789012:service/prod/web"])
    assert exit_.value.code == 2
    assert "not a task ARN, task id or cluster/id" in capsys.readouterr().err


def test_task_against_an_unreachable_endpoint_or_a_missing_table_is_one_line(
    seeded: Stack, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ECSWATCH_DYNAMODB_TASK_TABLE", "NoSuchTable")
    assert main(["task", OOM_TASK]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ecswatch: task: Scan failed: ResourceNotFoundException")
    assert len(err.splitlines()) == 1
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert main(["task", OOM_TASK]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ecswatch: task: cannot reach AWS at http://127.0.0.1:9")
    assert len(err.splitlines()) == 1
