"""`ecswatch task`'s reading of one item: the timeline in time order, phases, containers, cause."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ecswatch.commands.task import life_of, render, task_ref
from tests.commands.stopped import as_scanned, task_item

STOPPED_AT = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)


def test_the_timeline_is_in_time_order_even_when_ecs_stops_execution_before_stopping() -> None:
    """ECS may write executionStoppedAt before stoppingAt: no negative step in the timeline."""
    item = task_item("essential_exit_with_clean_sidecar", task_id="t", stopped_at=STOPPED_AT)
    life = life_of(as_scanned(item))
    fields = [mark["field"] for mark in life.timeline]
    assert fields.index("executionStoppedAt") < fields.index("stoppingAt")
    assert all(mark["seconds_since_previous"] >= 0 for mark in life.timeline[1:])
    assert life.cause == "essential_exit_error"
    assert [(c["name"], c["exit_code"]) for c in life.containers] == [("web", 1), ("log_router", 0)]


def test_a_running_task_has_no_cause_and_no_running_phase() -> None:
    item = task_item("oom_kill", task_id="t", stopped_at=STOPPED_AT)
    for field in ("stoppedAt", "stopCode", "stoppedReason"):
        del item[field]
    item["lastStatus"] = "RUNNING"
    life = life_of(as_scanned(item))
    assert (life.cause, life.failure) == (None, None)
    assert "running" not in life.phases
    assert "cause" not in render(life)


def test_a_pull_failure_shows_the_containers_reason() -> None:
    life = life_of(as_scanned(task_item("image_pull_failure", task_id="t", stopped_at=STOPPED_AT)))
    assert (life.cause, life.failure) == ("image_pull", True)
    assert life.containers[0]["reason"].startswith("CannotPullContainerError")
    assert life.containers[0]["exit_code"] is None
    assert "exit -" in render(life)


@pytest.mark.parametrize(
    "ref",
    [
        "0123456789abcdef0123456789abcdef",
        "prod/0123456789abcdef0123456789abcdef",
        "1dc5c17a-422b-4dc4-b493-371970c6c4d6",
        "arn:aws:ecs:eu-west-1:111122223333:task/prod/0123456789abcdef0123456789abcdef",
        "arn:aws:ecs:us-east-1:111122223333:task/1dc5c17a-422b-4dc4-b493-371970c6c4d6",
    ],
)
def test_task_references_accepted(ref: str) -> None:
    assert task_ref(ref) == ref


@pytest.mark.parametrize(
    "ref", ["", "arn:aws:ecs:eu-west-1:111122223333:service/prod/web", "a b", "x/y/z"]
)
def test_other_references_are_refused(ref: str) -> None:
    with pytest.raises(ValueError, match="not a task ARN, task id or cluster/id"):
        task_ref(ref)
