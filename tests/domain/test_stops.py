"""The stop classifier on real STOPPED events: each documented cause, OOM kills, start phases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ecswatch.domain.events import Event, Invalid, parse_message
from ecswatch.domain.stops import (
    FAILURE_CAUSES,
    RULES,
    Cause,
    classify,
    classify_stop,
    is_failure,
    lifetime_seconds,
    oom_containers,
    start_phases,
)

EVENTS: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "data" / "stopped_tasks.json").read_text()
)


def detail_of(name: str) -> dict[str, Any]:
    """The detail as the daemon sees it: parsed from the SQS body (numbers as int/Decimal)."""
    parsed = parse_message(json.dumps(EVENTS[name]))
    assert isinstance(parsed, Event), parsed
    return dict(parsed.detail)


@pytest.mark.parametrize(
    ("name", "cause"),
    [
        ("essential_exit_with_clean_sidecar", Cause.ESSENTIAL_EXIT_ERROR),
        ("elb_health_check_kill", Cause.ELB_HEALTH_CHECK),
        ("spot_interruption", Cause.SPOT_INTERRUPTION),
        ("termination_notice", Cause.SPOT_INTERRUPTION),
        ("scheduler_scale_in", Cause.SCHEDULER),
        ("image_pull_failure", Cause.IMAGE_PULL),
        ("image_pull_failure_ec2", Cause.IMAGE_PULL),
        ("oom_kill", Cause.OOM),
        ("sigkill_after_stop_timeout", Cause.USER),
        ("unknown_stop_code", Cause.UNKNOWN),
    ],
)
def test_real_stopped_events_are_classified_as_documented(name: str, cause: Cause) -> None:
    """Captured / documented STOPPED events each get the cause the docs table gives them."""
    assert classify(detail_of(name)) is cause


def test_every_rule_classifies_its_own_real_example() -> None:
    """Each row's example text (with its stopCode, and alone) gives that row's cause."""
    for rule in RULES:
        code = rule.stop_codes[0] if rule.stop_codes else ""
        assert classify_stop(code, rule.example, [], started=True) is rule.cause, rule
        if rule.prefixes:
            assert classify_stop("", rule.example, [], started=True) is rule.cause, rule


def test_an_unknown_stop_code_is_data_not_an_error() -> None:
    """A stopCode ECS adds later is unknown after RUNNING, a failed start before it."""
    assert classify_stop("BrandNewCode", "", [], started=True) is Cause.UNKNOWN
    assert classify_stop("BrandNewCode", "", [], started=False) is Cause.FAILED_TO_START
    assert (
        classify({"stopCode": 7, "stoppedReason": None, "containers": "x"}) is Cause.FAILED_TO_START
    )


def test_older_platform_spellings_are_recognised() -> None:
    """Platform 1.3 / EC2 agents name the same errors differently: same cause."""
    assert (
        classify_stop(
            "",
            "DockerTimeoutError: Could not transition to created; timed out after waiting 4m0s",
            [],
            started=False,
        )
        is Cause.CONTAINER_RUNTIME
    )
    assert classify_stop(
        "",
        "CannotPullECRContainerError: AccessDeniedException: User: "
        "arn:aws:sts::1:assumed-role/x is not authorized",
        [],
        started=False,
    ) is (Cause.IMAGE_PULL)
    assert (
        classify_stop(
            "TaskFailedToStart",
            "Timeout waiting for network interface provisioning to complete.",
            [],
            started=False,
        )
        is Cause.RESOURCE_INIT
    )
    assert (
        classify_stop("", "ContainerRunTimeError: x", [], started=True) is Cause.CONTAINER_RUNTIME
    )


def test_essential_exit_is_clean_only_with_a_zero_exit() -> None:
    """Exit 0 with the others' stop signals is clean; any real error, or only signals, is not."""
    reason = "Essential container in task exited"

    def cause(*codes: int | None) -> Cause:
        containers = [{"name": f"c{i}", "exitCode": c} for i, c in enumerate(codes)]
        return classify_stop("EssentialContainerExited", reason, containers, started=True)

    assert cause(0, 143) is Cause.ESSENTIAL_EXIT_CLEAN
    assert cause(0, 0) is Cause.ESSENTIAL_EXIT_CLEAN
    assert cause(1, 0) is Cause.ESSENTIAL_EXIT_ERROR
    assert cause(137) is Cause.ESSENTIAL_EXIT_ERROR
    assert cause(None) is Cause.ESSENTIAL_EXIT_ERROR
    assert classify_stop("", reason, [{"exitCode": 0}], started=True) is Cause.ESSENTIAL_EXIT_CLEAN


def test_oom_containers_need_the_oom_reason_not_exit_137() -> None:
    """OutOfMemoryError in a container reason is an OOM kill, even at exit 0; 137 alone is not."""
    assert oom_containers(detail_of("oom_kill")) == ["worker"]
    assert oom_containers(detail_of("sigkill_after_stop_timeout")) == []
    assert oom_containers(detail_of("elb_health_check_kill")) == []
    seen_with_exit_0 = {
        "containers": [
            {
                "name": "app",
                "exitCode": 0,
                "reason": "OutOfMemoryError: Container killed due to memory usage",
            }
        ]
    }
    assert oom_containers(seen_with_exit_0) == ["app"]
    assert classify_stop("", "", seen_with_exit_0["containers"], started=True) is Cause.OOM


def test_start_phases_skip_missing_and_negative_and_keep_cached_pulls() -> None:
    """Each phase from its two times; a cached pull is 0 s; a missing or negative one is skipped."""
    assert start_phases(detail_of("essential_exit_with_clean_sidecar")) == [
        ("provisioning", pytest.approx(9.729)),
        ("pull", pytest.approx(11.282)),
        ("start", pytest.approx(2.388)),
    ]
    assert start_phases(detail_of("elb_health_check_kill")) == [
        ("provisioning", 5.0),
        ("pull", 0.0),
        ("start", 3.0),
    ]
    ec2_without_pull_times = {
        "createdAt": "2026-11-20T10:00:00Z",
        "startedAt": "2026-11-20T10:00:05Z",
    }
    assert start_phases(ec2_without_pull_times) == []
    negative = {
        "createdAt": "2026-11-20T10:00:10Z",
        "pullStartedAt": "2026-11-20T10:00:05Z",
        "pullStoppedAt": "2026-11-20T10:00:06Z",
        "startedAt": "garbage",
    }
    assert start_phases(negative) == [("pull", 1.0)]


def test_lifetime_is_started_to_stopped() -> None:
    """startedAt→stoppedAt; None without startedAt or when negative."""
    assert lifetime_seconds(detail_of("oom_kill")) == pytest.approx(420.5)
    assert lifetime_seconds(detail_of("image_pull_failure")) is None
    assert (
        lifetime_seconds({"startedAt": "2026-01-01T00:00:10Z", "stoppedAt": "2026-01-01T00:00:00Z"})
        is None
    )


def test_failures_are_the_services_own_faults() -> None:
    """Crash loops count failures, never a user, scheduler, Spot or platform stop."""
    assert is_failure("oom") and is_failure(Cause.ELB_HEALTH_CHECK)
    for cause in (
        Cause.USER,
        Cause.SCHEDULER,
        Cause.SPOT_INTERRUPTION,
        Cause.INFRASTRUCTURE,
        Cause.ESSENTIAL_EXIT_CLEAN,
        Cause.UNKNOWN,
    ):
        assert not is_failure(cause)
    assert set(Cause) > FAILURE_CAUSES


def test_cause_labels_are_stable_snake_case() -> None:
    """The label values the alerts and dashboards rely on."""
    assert [c.value for c in Cause] == [
        "image_pull",
        "resource_init",
        "container_runtime",
        "oom",
        "elb_health_check",
        "container_health_check",
        "essential_exit_error",
        "essential_exit_clean",
        "spot_interruption",
        "infrastructure",
        "user",
        "scheduler",
        "failed_to_start",
        "unknown",
    ]


def test_the_data_file_is_events_not_invalid() -> None:
    """Every captured event parses as a Task State Change (the files stay real)."""
    for body in EVENTS.values():
        assert not isinstance(parse_message(json.dumps(body)), Invalid)
