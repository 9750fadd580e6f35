"""The ecswatch_reconcile_* instruments, registered on the daemon's CollectorRegistry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from ecswatch.daemon.reconcile.ecs import OPERATIONS

RESULTS = ("success", "failed", "aborted")


class ReconcileMetrics:
    def __init__(self, registry: CollectorRegistry, *, interval_seconds: float) -> None:
        self.passes = Counter(
            "ecswatch_reconcile_passes",
            "Reconciliation passes this replica ran, by result (aborted: shutdown or lease lost).",
            ["result"],
            registry=registry,
        )
        self.fixes = Counter(
            "ecswatch_reconcile_fixes",
            "Drift fixed by reconciliation: added (missing), caught_up (behind), marked_stopped "
            "(gone from ECS).",
            ["account", "region", "cluster", "resource", "kind"],
            registry=registry,
        )
        self.skipped = Counter(
            "ecswatch_reconcile_skipped",
            "Resources the ECS API reported that a pass could not compare, by reason.",
            ["reason"],
            registry=registry,
        )
        self.api_calls = Counter(
            "ecswatch_reconcile_api_calls",
            "ECS API calls made by reconciliation, by operation (retries included).",
            ["operation"],
            registry=registry,
        )
        self.throttles = Counter(
            "ecswatch_reconcile_throttles",
            "ECS API calls of reconciliation refused with ThrottlingException, by operation.",
            ["operation"],
            registry=registry,
        )
        self.last_success = Gauge(
            "ecswatch_reconcile_last_success_timestamp_seconds",
            "Unix time of the fleet's last successful pass (from the lease item: same on every "
            "replica).",
            registry=registry,
        )
        self.last_duration = Gauge(
            "ecswatch_reconcile_last_pass_duration_seconds",
            "Duration of this replica's last pass.",
            registry=registry,
        )
        self.leader = Gauge(
            "ecswatch_reconcile_leader",
            "1 while this replica holds the reconciliation lease.",
            registry=registry,
        )
        self.interval = Gauge(
            "ecswatch_reconcile_interval_seconds",
            "Configured seconds between passes (0: reconciliation off).",
            registry=registry,
        )
        self.interval.set(interval_seconds)
        for result in RESULTS:
            self.passes.labels(result=result)
        for operation in OPERATIONS:
            self.api_calls.labels(operation=operation)
            self.throttles.labels(operation=operation)
        self.skipped.labels(reason="no_version")

    def count_call(self, operation: str) -> None:
        self.api_calls.labels(operation=operation).inc()

    def count_throttle(self, operation: str) -> None:
        self.throttles.labels(operation=operation).inc()
