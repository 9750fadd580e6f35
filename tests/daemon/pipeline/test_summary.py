"""The periodic INFO summary that stands in for per-message lines."""

from __future__ import annotations

import structlog
from prometheus_client import CollectorRegistry

from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.processor import Summary
from ecswatch.domain.events import TASK_STATE_CHANGE
from ecswatch.logging import configure_logging


def test_summary_counts_outcomes_since_the_last_summary() -> None:
    """Each events_summary line gives the events per outcome since the one before."""
    metrics = Metrics(CollectorRegistry())
    metrics.count_event(TASK_STATE_CHANGE, "applied")
    summary = Summary(metrics, every=0.0)
    configure_logging("INFO", "json")
    for outcome in ("applied", "applied", "stale"):
        metrics.count_event(TASK_STATE_CHANGE, outcome)
    with structlog.testing.capture_logs() as logs:
        summary.due()
        metrics.count_event(TASK_STATE_CHANGE, "duplicate")
        summary.due()
    first, second = (entry for entry in logs if entry["event"] == "events_summary")
    assert (first["applied"], first["stale"], first["duplicate"]) == (2, 1, 0)
    assert (second["applied"], second["stale"], second["duplicate"]) == (0, 0, 1)


def test_summary_is_silent_until_its_interval_has_passed() -> None:
    """No line before `every` seconds: a busy daemon writes one a minute, not one per event."""
    metrics = Metrics(CollectorRegistry())
    summary = Summary(metrics, every=3600.0)
    configure_logging("INFO", "json")
    with structlog.testing.capture_logs() as logs:
        for _ in range(100):
            metrics.count_event(TASK_STATE_CHANGE, "applied")
            summary.due()
    assert logs == []


def test_cached_label_children_count_into_the_exported_series() -> None:
    """count_event and observe_write reuse label children: the samples are the same."""
    registry = CollectorRegistry()
    metrics = Metrics(registry, tables=("T",))
    for _ in range(3):
        metrics.count_event(TASK_STATE_CHANGE, "applied")
        metrics.observe_write("T", 0.01)
    labels = {"detail_type": TASK_STATE_CHANGE, "outcome": "applied"}
    assert registry.get_sample_value("ecswatch_events_total", labels) == 3
    assert registry.get_sample_value("ecswatch_write_seconds_count", {"table": "T"}) == 3
