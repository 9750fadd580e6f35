"""The per-service gauges every replica exports from the stored service state: task-start
impairment, deployments in progress, and the desired/running/pending counts.

A background thread refreshes the states every `refresh_seconds`; this replica's own applied
writes show at once. A scrape never waits on DynamoDB.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ecswatch.domain.arns import account_region
from ecswatch.domain.services import IN_PROGRESS, ServiceEvent, ServiceState, TaskCounts

log = structlog.get_logger("ecswatch.daemon.expose.service_gauges")

COUNT_GAUGES = (
    ("ecswatch_service_desired_tasks", "desiredCount: tasks the service wants (from the ECS API)."),
    ("ecswatch_service_running_tasks", "runningCount: tasks RUNNING (from the ECS API)."),
    ("ecswatch_service_pending_tasks", "pendingCount: tasks PENDING (from the ECS API)."),
)


class ServiceStates(Protocol):
    def scan(self) -> dict[str, ServiceState]: ...


def count_gauges(states: Iterable[tuple[str, str, str, TaskCounts | None]]) -> Iterator[Any]:
    """The three gauges from (service ARN, cluster, service, counts) of the stored state."""
    families = [
        GaugeMetricFamily(name, doc, labels=["account", "region", "cluster", "service"])
        for name, doc in COUNT_GAUGES
    ]
    for arn, cluster, service, counts in states:
        if counts is None:
            continue
        labels = [*account_region(arn), cluster, service]
        for family, value in zip(families, (counts.desired, counts.running, counts.pending),
                                 strict=True):  # fmt: skip
            family.add_metric(labels, float(value))
    yield from families


class ServiceStateCollector(Collector):
    """ecswatch_service_task_start_impaired and ecswatch_deployments_in_progress, from the table.

    A background thread rescans every `refresh_seconds`; this replica's own applied writes show
    at once. A scrape never waits on DynamoDB.
    """

    def __init__(self, store: ServiceStates, refresh_seconds: float) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._states: dict[str, ServiceState] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="ecswatch-service-state", daemon=True
        )

    def start(self) -> None:
        if self._refresh_seconds > 0:
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=timeout)

    def applied(self, event: ServiceEvent) -> None:
        with self._lock:
            old = self._states.get(event.service_arn)
            impaired = old.impaired if old else None
            deployment = old.deployment_state if old else None
            if event.register == "impairment":
                impaired = event.impaired
            elif event.register == "deployment":
                deployment = event.deployment_state
            self._states[event.service_arn] = ServiceState(
                event.cluster, event.service, impaired, deployment, old.counts if old else None
            )

    def refresh(self) -> None:
        states = self._store.scan()
        with self._lock:
            self._states = states

    def _run(self) -> None:
        while True:
            try:
                self.refresh()
            except Exception as exc:
                log.warning(
                    "service_state_refresh_failed", error=type(exc).__name__, detail=str(exc)[:300]
                )
            if self._stop.wait(self._refresh_seconds):
                return

    def collect(self) -> Iterator[GaugeMetricFamily]:
        impaired = GaugeMetricFamily(
            "ecswatch_service_task_start_impaired",
            "1 after SERVICE_TASK_START_IMPAIRED, 0 after SERVICE_STEADY_STATE (stored state).",
            labels=["account", "region", "cluster", "service"],
        )
        deploying = GaugeMetricFamily(
            "ecswatch_deployments_in_progress",
            "1 while the service's latest deployment event is IN_PROGRESS (stored state).",
            labels=["account", "region", "cluster", "service"],
        )
        with self._lock:
            states = list(self._states.items())
        for arn, state in states:
            labels = [*account_region(arn), state.cluster, state.service]
            if state.impaired is not None:
                impaired.add_metric(labels, 1.0 if state.impaired else 0.0)
            if state.deployment_state is not None:
                deploying.add_metric(labels, 1.0 if state.deployment_state == IN_PROGRESS else 0.0)
        yield impaired
        yield deploying
        yield from count_gauges((arn, s.cluster, s.service, s.counts) for arn, s in states)
