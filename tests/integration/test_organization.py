"""One ecswatch for an organization: two accounts × two regions through one queue, some of it
via SNS, and no account's or region's figure is ever added to another's."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from ecswatch.cli import main
from tests.conftest import Running, Stack, wait_for
from tests.domain.test_message_shapes import sns

ACCOUNTS = ("111111111111", "222222222222")
REGIONS = ("eu-west-1", "us-east-1")
ORIGINS = list(itertools.product(ACCOUNTS, REGIONS))
#: failed starts per origin: all different, so any mixing of two origins shows
FAILED = dict(zip(ORIGINS, (1, 2, 3, 4), strict=True))
NOW = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def failed_start(account: str, region: str, n: int) -> dict[str, Any]:
    """A task of `prod`/`web` that went PENDING → STOPPED in that account and region."""
    arn = f"arn:aws:ecs:{region}:{account}:task/prod/{n:032x}"
    return {
        "version": "0",
        "id": f"{account}-{region}-{n}",
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": account,
        "time": NOW,
        "region": region,
        "resources": [arn],
        "detail": {
            "taskArn": arn,
            "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/prod",
            "group": "service:web",
            "lastStatus": "STOPPED",
            "stopCode": "TaskFailedToStart",
            "stoppedReason": "CannotPullContainerError: pull access denied",
            "stoppedAt": NOW,
            "version": 2,
        },
    }


def impaired(account: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": f"impaired-{account}-{region}",
        "detail-type": "ECS Service Action",
        "source": "aws.ecs",
        "account": account,
        "time": NOW,
        "region": region,
        "resources": [f"arn:aws:ecs:{region}:{account}:service/prod/web"],
        "detail": {
            "eventType": "WARN",
            "eventName": "SERVICE_TASK_START_IMPAIRED",
            "clusterArn": f"arn:aws:ecs:{region}:{account}:cluster/prod",
            "createdAt": NOW,
        },
    }


def organization_bodies() -> list[str]:
    envelopes = [
        failed_start(account, region, n)
        for (account, region), count in FAILED.items()
        for n in range(count)
    ] + [impaired(account, region) for account, region in ORIGINS[1:]]
    # Every other one through SNS (raw delivery off), as a member account's topic would send it.
    return [sns(json.dumps(e)) if i % 2 else json.dumps(e) for i, e in enumerate(envelopes)]


@pytest.fixture
def processed(stack: Stack, start_daemon: Callable[..., Running]) -> Running:
    bodies = organization_bodies()
    running = start_daemon(workers={"count": 2}, metrics={"service_state_refresh_seconds": 0.5})
    stack.send(*bodies)
    wait_for(lambda: running.processed() >= len(bodies) and stack.queue_counts() == (0, 0))
    return running


def test_per_account_and_region_metrics_are_exact_and_never_add_up(processed: Running) -> None:
    """Four `prod/web` services in four places: four series, each with its own count."""
    for (account, region), count in FAILED.items():
        service = {"account": account, "region": region, "cluster": "prod"}
        failed = {**service, "group": "service:web", "stop_code": "TaskFailedToStart"}
        assert processed.value("ecswatch_tasks_pending_to_stopped_total", **failed) == count
        service["service"] = "web"
        expected = 0 if (account, region) == ORIGINS[0] else 1
        action = {**service, "event_name": "SERVICE_TASK_START_IMPAIRED"}
        assert processed.value("ecswatch_service_events_total", **action) == expected
        gauge = processed.registry.get_sample_value("ecswatch_service_task_start_impaired", service)
        assert gauge == (None if expected == 0 else 1.0)
    assert sum(processed.failed_starts().values()) == sum(FAILED.values())
    assert processed.value("ecswatch_dead_lettered_total", reason="sns_not_ecs") == 0


def test_report_groups_by_account_and_region_and_filters_on_them(
    processed: Running,
    stack: Stack,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`report` keeps the four apart, heads each group, and `--account/--region` pick one."""
    monkeypatch.setenv("ECSWATCH_AWS_ENDPOINT_URL", stack.emulator.url)
    assert main(["report", "--json"]) == 0
    services = json.loads(capsys.readouterr().out)["services"]
    found = {(s["account"], s["region"]): s for s in services}
    assert len(services) == len(found) == 4
    assert {origin: s["failed_to_start"] for origin, s in found.items()} == FAILED
    assert {origin: s["task_start_impaired"] for origin, s in found.items()} == {
        origin: (None if origin == ORIGINS[0] else True) for origin in ORIGINS
    }
    assert main(["report"]) == 0
    text = capsys.readouterr().out
    headings = [line for line in text.splitlines() if line.startswith("Account ")]
    assert headings == [f"Account {a}, region {r}:" for a, r in ORIGINS]
    assert main(["report", "--json", "--account", ACCOUNTS[1], "--region", REGIONS[0]]) == 0
    [only] = json.loads(capsys.readouterr().out)["services"]
    assert (only["account"], only["region"], only["failed_to_start"]) == (*ORIGINS[2], 3)
    assert main(["report", "--account", ACCOUNTS[0], "--region", REGIONS[1]]) == 0
    assert "Account " not in capsys.readouterr().out  # one origin left: no headings
