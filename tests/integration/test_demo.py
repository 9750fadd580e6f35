"""`ecswatch demo` as a newcomer runs it, its summary checked against the stream's truth."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ecswatch.dev.demo import EVENTS_PER_TASK
from ecswatch.dev.simulate import generate

pytestmark = pytest.mark.slow

EVENTS = 60
SEED = 4


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ecswatch", "demo", "--events", str(EVENTS), "--seed", str(SEED),
         "--port", "0", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )  # fmt: skip


def test_demo_summary_matches_the_truth_of_its_stream() -> None:
    result = run_demo("--json")
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    summary = json.loads(result.stdout)
    truth = generate(
        tasks=max(4, round(EVENTS / EVENTS_PER_TASK)),
        copies=2,
        seed=SEED,
        with_service_events=True,
    ).truth
    assert summary["matches_truth"] is True
    assert summary["delivery"].startswith("EventBridge")
    assert summary["tasks_by_status"] == dict(truth.tasks_by_status())
    assert summary["failed_starts"] == {
        f"{cluster} {group} {code}": n for (cluster, group, code), n in truth.failed_starts.items()
    }
    assert summary["failed_start_reasons"] == {
        "service:billing": {"CannotPullContainerError": sum(truth.failed_starts.values())}
    }
    assert summary["impaired_services"] == ["prod/billing"]
    # Every service event counted once although each was delivered twice.
    assert summary["service_events"] == {
        f"{c}/{s} {name}": n for (c, s, name), n in truth.service_events.items()
    }
    assert summary["deployments"] == {
        f"{c}/{s} {state}": n for (c, s, state), n in truth.deployments.items()
    }
    assert summary["dead_letters"] == [
        {"reason": "not_json", "body": summary["dead_letters"][0]["body"]}
    ]
    outcomes = summary["outcomes"]
    assert outcomes["invalid"] == 1
    assert outcomes["applied"] <= truth.distinct_events
    assert (
        outcomes["applied"] + outcomes["duplicate"] + outcomes.get("stale", 0)
        >= (summary["published"])
    )
    assert summary["metrics_url"].endswith("/metrics")


def test_demo_prints_a_readable_summary() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "EventBridge PutEvents" in out
    assert "Tasks by last status:" in out
    assert "prod/billing" in out
    assert "TaskFailedToStart: CannotPullContainerError" in out
    assert "reason=not_json" in out
    assert "(SERVICE_TASK_START_IMPAIRED): prod/billing" in out
    assert "✓ every ARN holds its highest version" in out
    assert result.stderr == ""  # no log noise for a newcomer
