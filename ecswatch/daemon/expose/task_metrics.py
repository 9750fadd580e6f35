"""The per-task instruments of issue "See every way a task dies": deaths by cause, OOM kills,
failed-task lifetime, start phases, and deployment outcomes; counted from domain.deaths.

Cardinality is what happened: a child exists only once something was counted under it, so a
service costs the series of its own causes, OOM-killed containers and failed lifetimes, and a
cluster its start-phase histograms (per service only with start_phases_per_service).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram

from ecswatch.domain.deaths import Before, WriteCounts, task_counts
from ecswatch.domain.events import Event, FailedStart
from ecswatch.domain.services import ServiceEvent
from ecswatch.domain.stops import Cause

#: seconds; 600 is the crash-loop alert's "died within 10 minutes of starting". Few buckets:
#: a service with failures pays ~180 bytes of /metrics per bucket, 0.9 MB at 5,000 services.
LIFETIME_BUCKETS = (30, 120, 600, 3600, 86400)
START_PHASE_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600)
_CAUSES = ", ".join(cause.value for cause in Cause)


class TaskMetrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        count_failed_start: Callable[[FailedStart], None],
        *,
        start_phases_per_service: bool = False,
    ) -> None:
        self._count_failed_start = count_failed_start
        self._phases_per_service = start_phases_per_service
        # Label children by label values, as Metrics does for the per-event series:
        # `labels()` costs a lock and argument handling, a dict lookup does not.
        self._children: dict[object, dict[tuple[str, ...], Any]] = {}
        self.stopped = Counter(
            "ecswatch_tasks_stopped",
            f"Tasks that stopped, once per task, by cause ({_CAUSES}: the rules and the texts "
            "they match are on the docs' stop causes page, from ecswatch/domain/stops.py) and "
            "started (true: the task had reached RUNNING).",
            ["account", "region", "cluster", "group", "cause", "started"],
            registry=registry,
        )
        self.oom_kills = Counter(
            "ecswatch_container_oom_kills",
            "Containers the kernel killed for their memory limit, once per task and container: "
            "the container's reason starts with OutOfMemoryError (exit code 137 alone, also the "
            "SIGKILL after stopTimeout, is not counted).",
            ["account", "region", "cluster", "group", "container"],
            registry=registry,
        )
        self.failed_lifetime = Histogram(
            "ecswatch_failed_task_lifetime_seconds",
            "startedAt to stoppedAt of tasks that reached RUNNING and then died of a failure "
            "cause (not user, scheduler, spot_interruption, infrastructure, essential_exit_clean "
            "or unknown), once per task; le=600 counts deaths within 10 minutes of starting.",
            ["account", "region", "cluster", "group"],
            buckets=LIFETIME_BUCKETS,
            registry=registry,
        )
        by = ["account", "region", "cluster", *(["group"] if start_phases_per_service else [])]
        self.start_phases = Histogram(
            "ecswatch_task_start_phase_seconds",
            "Start phases, once per task: provisioning (createdAt to pullStartedAt), pull "
            "(pullStartedAt to pullStoppedAt; 0 for a cached image), start (pullStoppedAt to "
            "startedAt); a phase with a missing or negative time is left out. By cluster; by "
            "service (group) too with [metrics] start_phases_per_service.",
            [*by, "phase"],
            buckets=START_PHASE_BUCKETS,
            registry=registry,
        )
        self.deployment_outcomes = Counter(
            "ecswatch_deployment_outcomes",
            "How service deployments ended, once per event id: completed, failed, rolled_back "
            "(the circuit breaker began rolling back; counted even when the service is steady "
            "again, and the rollback's own completion then counts completed).",
            ["account", "region", "cluster", "service", "outcome"],
            registry=registry,
        )
        for metric in (
            self.stopped, self.oom_kills, self.failed_lifetime, self.start_phases,
            self.deployment_outcomes,
        ):  # fmt: skip
            self._children[metric] = {}

    def count_task(self, event: Event, before: Before) -> WriteCounts | None:
        """The one place an applied task write is counted (processor and reconciler): its
        death, OOM kills, failed-task lifetime, start phases and PENDING→STOPPED."""
        counts = task_counts(event, before)
        if counts is None:
            return None
        where = (counts.account, counts.region, counts.cluster)
        service = (*where, counts.group)
        death = counts.death
        if death is not None:
            started = "true" if death.started else "false"
            self._child(self.stopped, (*service, death.cause.value, started)).inc()
            for container in death.oom:
                self._child(self.oom_kills, (*service, container)).inc()
            if death.lifetime is not None:
                self._child(self.failed_lifetime, service).observe(death.lifetime)
            if death.failed_start is not None:
                self._count_failed_start(death.failed_start)
        phase_labels = service if self._phases_per_service else where
        for phase, seconds in counts.phases:
            self._child(self.start_phases, (*phase_labels, phase)).observe(seconds)
        return counts

    def count_deployment(self, event: ServiceEvent) -> None:
        """A deployment's outcome, if this event is one; the caller de-duplicates by event id."""
        outcome = event.deployment_outcome
        if outcome is not None:
            labels = (event.account, event.region, event.cluster, event.service, outcome)
            self._child(self.deployment_outcomes, labels).inc()

    def forget_services(self, keys: Collection[tuple[str, ...]]) -> None:
        """Drop the children of gone services, keys (account, region, cluster, service or
        group), from the instruments and the cache, which holds every child they have."""
        for metric, children in self._children.items():
            for labels in list(children):
                if labels[:4] in keys:
                    del children[labels]
                    metric.remove(*labels)  # type: ignore[attr-defined]

    def _child(self, metric: object, labels: tuple[str, ...]) -> Any:
        children = self._children[metric]
        child = children.get(labels)
        if child is None:
            child = children.setdefault(labels, metric.labels(*labels))  # type: ignore[attr-defined]
        return child
