"""The per-task instruments: what one task's death and start cost in series, and forgetting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.domain import deaths
from ecswatch.domain.deaths import Before
from ecswatch.domain.events import Event, parse_message
from ecswatch.domain.services import Kind, ServiceEvent, parse_service_event
from ecswatch.domain.stops import Cause
from tests.domain.test_stops import EVENTS

SERVICE = {"account": "123456789012", "region": "us-west-2", "cluster": "prod"}
WEB = {**SERVICE, "group": "service:web"}


def event(name: str) -> Event:
    parsed = parse_message(json.dumps(EVENTS[name]))
    assert isinstance(parsed, Event)
    return parsed


def series(registry: CollectorRegistry, prefix: str) -> list[str]:
    """Exposed sample lines of metric families starting with `prefix`."""
    return [
        line
        for line in generate_latest(registry).decode().splitlines()
        if line.startswith(prefix) and not line.startswith("#")
    ]


def deployment(name: str, reason: str = "", event_id: str = "d1") -> ServiceEvent:
    envelope: dict[str, Any] = {
        "id": event_id,
        "time": "2026-11-20T10:00:00Z",
        "resources": ["arn:aws:ecs:us-west-2:123456789012:service/prod/web"],
    }
    parsed = parse_service_event(
        Kind.DEPLOYMENT, envelope, {"eventName": name, "reason": reason, "eventType": "INFO"}
    )
    assert isinstance(parsed, ServiceEvent)
    return parsed


def test_one_oom_death_costs_only_its_own_series() -> None:
    """An OOM kill after starting: one stop series, one OOM series, one lifetime histogram and
    the cluster's start-phase histograms; no series for causes that did not happen."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.tasks.count_task(event("oom_kill"), Before("RUNNING", False))
    value = registry.get_sample_value
    assert value("ecswatch_tasks_stopped_total", {**WEB, "cause": "oom", "started": "true"}) == 1
    assert value("ecswatch_container_oom_kills_total", {**WEB, "container": "worker"}) == 1
    assert value("ecswatch_failed_task_lifetime_seconds_count", WEB) == 1
    assert value("ecswatch_failed_task_lifetime_seconds_bucket", {**WEB, "le": "600.0"}) == 1
    assert value("ecswatch_task_start_phase_seconds_sum", {**SERVICE, "phase": "pull"}) == 5
    assert len(series(registry, "ecswatch_tasks_stopped_total")) == 1
    assert len(series(registry, "ecswatch_container_oom_kills_total")) == 1
    assert value("ecswatch_tasks_pending_to_stopped_total", {**WEB, "stop_code": ""}) is None


def test_a_stop_the_item_already_had_counts_nothing() -> None:
    """The later STOPPED version of a counted task, and a RUNNING already started, count 0."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    assert metrics.tasks.count_task(event("oom_kill"), Before("STOPPED", True)) is None
    assert series(registry, "ecswatch_tasks_stopped_total") == []
    assert series(registry, "ecswatch_task_start_phase_seconds_count") == []


def test_a_never_started_stop_counts_the_failed_start_and_no_lifetime() -> None:
    """A pull failure: cause image_pull, started false, PENDING→STOPPED as before, no lifetime."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.tasks.count_task(event("image_pull_failure"), Before("PENDING", False))
    value = registry.get_sample_value
    started = {"cause": "image_pull", "started": "false"}
    assert value("ecswatch_tasks_stopped_total", {**WEB, **started}) == 1
    pending = {**WEB, "stop_code": "TaskFailedToStart"}
    assert value("ecswatch_tasks_pending_to_stopped_total", pending) == 1
    assert series(registry, "ecswatch_failed_task_lifetime_seconds_count") == []


def test_start_phases_by_service_only_when_asked() -> None:
    """[metrics] start_phases_per_service adds the group label."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, start_phases_per_service=True)
    metrics.tasks.count_task(event("elb_health_check_kill"), Before("PENDING", False))
    labels = {**WEB, "phase": "pull"}
    assert registry.get_sample_value("ecswatch_task_start_phase_seconds_count", labels) == 1


def test_deployment_outcomes_count_the_circuit_breakers_rollback() -> None:
    """COMPLETED, FAILED, and the IN_PROGRESS that starts a rollback; a plain IN_PROGRESS not."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for name, reason in (
        ("SERVICE_DEPLOYMENT_IN_PROGRESS", "ECS deployment ecs-svc/1 in progress."),
        ("SERVICE_DEPLOYMENT_FAILED", "ECS deployment circuit breaker: tasks failed to start."),
        ("SERVICE_DEPLOYMENT_IN_PROGRESS",
         "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0."),
        ("SERVICE_DEPLOYMENT_COMPLETED", "ECS deployment ecs-svc/0 completed."),
    ):  # fmt: skip
        metrics.tasks.count_deployment(deployment(name, reason))
    labels = {**SERVICE, "service": "web"}
    for outcome in ("completed", "failed", "rolled_back"):
        value = registry.get_sample_value(
            "ecswatch_deployment_outcomes_total", {**labels, "outcome": outcome}
        )
        assert value == 1, outcome
    assert len(series(registry, "ecswatch_deployment_outcomes_total")) == 3


def test_a_gone_service_leaves_no_task_series_and_counts_afresh_if_it_returns() -> None:
    """forget_services drops the children and the cache; a later death makes a new exported one."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, start_phases_per_service=True)
    metrics.tasks.count_task(event("oom_kill"), Before("RUNNING", False))
    metrics.tasks.count_deployment(deployment("SERVICE_DEPLOYMENT_COMPLETED"))
    metrics.forget_services([("123456789012", "us-west-2", "prod", "web")])
    for prefix in ("ecswatch_tasks_stopped", "ecswatch_container_oom", "ecswatch_failed_task",
                   "ecswatch_task_start_phase", "ecswatch_deployment_outcomes"):  # fmt: skip
        assert [s for s in series(registry, prefix) if "_created" not in s] == [], prefix
    metrics.tasks.count_task(event("oom_kill"), Before("RUNNING", True))
    labels = {**WEB, "cause": "oom", "started": "true"}
    assert registry.get_sample_value("ecswatch_tasks_stopped_total", labels) == 1


def test_what_the_docs_say_a_series_costs() -> None:
    """A counter series is 2 samples, a lifetime series 9, a cluster's start phases 42."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    metrics.tasks.count_task(event("oom_kill"), Before("PENDING", False))
    assert len(series(registry, "ecswatch_tasks_stopped")) == 2
    assert len(series(registry, "ecswatch_failed_task_lifetime_seconds")) == 9
    assert len(series(registry, "ecswatch_task_start_phase_seconds")) == 42


def test_a_stop_without_started_at_after_running_is_not_a_failed_start() -> None:
    """The item had started (RUNNING with startedAt); a STOPPED version lacking startedAt is a
    death of a started task, never a PENDING→STOPPED failed start."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    stopped = event("oom_kill")
    detail = {k: v for k, v in stopped.detail.items() if k != "startedAt"}
    bare = Event(**{**{f: getattr(stopped, f) for f in stopped.__slots__}, "detail": detail})
    metrics.tasks.count_task(bare, Before("RUNNING", True))
    value = registry.get_sample_value
    assert value("ecswatch_tasks_stopped_total", {**WEB, "cause": "oom", "started": "true"}) == 1
    assert series(registry, "ecswatch_tasks_pending_to_stopped_total") == []


def test_only_a_write_that_moves_a_task_to_stopped_classifies_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Per-event CPU: a RUNNING write, a start already counted and a STOPPED item's later
    version never reach the stop rules; only the write that stops the task does."""
    calls: list[str] = []
    monkeypatch.setattr(deaths, "classify", lambda detail: calls.append("x") or Cause.USER)
    metrics = Metrics(CollectorRegistry())
    stopped = event("oom_kill")
    detail = {**stopped.detail, "lastStatus": "RUNNING"}
    running = Event(**{**{f: getattr(stopped, f) for f in stopped.__slots__}, "detail": detail})
    metrics.tasks.count_task(running, Before("PENDING", False))  # counts its start only
    metrics.tasks.count_task(running, Before("RUNNING", True))
    metrics.tasks.count_task(stopped, Before("STOPPED", True))
    assert calls == []
    metrics.tasks.count_task(stopped, Before("RUNNING", True))
    assert calls == ["x"]
