"""Every ecswatch_* instrument, registered on an injected CollectorRegistry.

Per-cluster and per-service series carry `account` and `region` (domain.arns: from the ARN,
else the envelope; "" when neither is well formed), so one organization's two `prod` clusters
never add up; both values are bounded by the organization, never ARNs or ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics import MetricWrapperBase

from ecswatch import __version__
from ecswatch.daemon.aws.errors import PAUSE_REASONS
from ecswatch.daemon.expose.task_metrics import TaskMetrics
from ecswatch.domain.events import KNOWN_DETAIL_TYPES, OTHER_DETAIL_TYPE, FailedStart

OUTCOMES = ("applied", "duplicate", "stale", "ignored", "invalid", "failed", "expired")
INVALID_REASONS = (
    "not_json",
    "not_envelope",
    "not_ecs",
    "missing_arn",
    "bad_version",
    "unstorable",
    "rejected_by_dynamodb",
    "bad_service_event",
    "sns_not_ecs",
    "item_too_large",
)
OPERATIONS = (
    "PutItem",
    "UpdateItem",
    "DeleteMessageBatch",
    "ChangeMessageVisibilityBatch",
    "SendMessage",
)


class Metrics:
    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        tables: tuple[str, ...] = (),
        start_phases_per_service: bool = False,
    ) -> None:
        self.registry = registry
        # Label children by label values: `labels()` costs a lock and argument handling per
        # call, a dict lookup does not. Only for the per-event series, whose label sets are
        # bounded (detail types, outcomes, tables); a child, once made, lives as long as its
        # metric anyway, so the cache holds nothing the registry does not.
        self._event_children: dict[tuple[str, str], Any] = {}
        self._write_children: dict[str, Any] = {}
        self.pending_to_stopped = Counter(
            "ecswatch_tasks_pending_to_stopped",
            "Tasks that went from PENDING straight to STOPPED (never started); "
            "repeated ones make ECS throttle the service's launches.",
            ["account", "region", "cluster", "group", "stop_code"],
            registry=registry,
        )
        self.messages_received = Counter(
            "ecswatch_messages_received", "SQS messages received.", registry=registry
        )
        self.events = Counter(
            "ecswatch_events",
            "Events processed, by detail-type and outcome.",
            ["detail_type", "outcome"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "ecswatch_dead_lettered",
            "Messages sent to the dead-letter queue, by reason.",
            ["reason"],
            registry=registry,
        )
        self.retries = Counter(
            "ecswatch_retries",
            "Retries of transient AWS errors, by operation.",
            ["operation"],
            registry=registry,
        )
        self.queue_messages = Gauge(
            "ecswatch_queue_messages",
            "Approximate messages in the source queue and the DLQ, by state (polled ~every 60 s).",
            ["queue", "state"],
            registry=registry,
        )
        self.retry_budget = Gauge(
            "ecswatch_retry_budget_tokens",
            "Tokens left in the process's retry budget, by service (500 when all is well; "
            "at 0, failures are final at once and the consumer pauses).",
            ["service"],
            registry=registry,
        )
        self.write_seconds = Histogram(
            "ecswatch_write_seconds",
            "Duration of one conditional PutItem call.",
            ["table"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.event_lag = Histogram(
            "ecswatch_event_lag_seconds",
            "Now minus the event's time, when it is applied.",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600),
            registry=registry,
        )
        self.in_flight = Gauge(
            "ecswatch_messages_in_flight",
            "Messages received and not yet deleted or released.",
            registry=registry,
        )
        self.last_receive = Gauge(
            "ecswatch_last_receive_timestamp_seconds",
            "Unix time of the last successful ReceiveMessage.",
            registry=registry,
        )
        self.paused = Gauge(
            "ecswatch_paused",
            "1 while a route (a table, or the DLQ) is paused for a systemic fault, by reason: "
            "its messages are held, the other routes flow.",
            ["reason"],
            registry=registry,
        )
        self.build_info = Gauge(
            "ecswatch_build_info", "ecswatch build information.", ["version"], registry=registry
        )
        self.build_info.labels(version=__version__).set(1)
        # Pre-initialise the known label sets so rate() and absent() work from the first scrape.
        for detail_type in (*KNOWN_DETAIL_TYPES, OTHER_DETAIL_TYPE):
            for outcome in OUTCOMES:
                self.events.labels(detail_type=detail_type, outcome=outcome)
        for reason in INVALID_REASONS:
            self.dead_lettered.labels(reason=reason)
        for operation in OPERATIONS:
            self.retries.labels(operation=operation)
        for table in tables:
            self.write_seconds.labels(table=table)
        for reason in PAUSE_REASONS:
            self.paused.labels(reason=reason)

        self.service_events = Counter(
            "ecswatch_service_events",
            "ECS Service Action events, at most once per event id, by eventName (ERROR ones "
            "included).",
            ["account", "region", "cluster", "service", "event_name"],
            registry=registry,
        )
        self.deployments = Counter(
            "ecswatch_deployments",
            "ECS Deployment State Change events, at most once per event id, by state.",
            ["account", "region", "cluster", "service", "state"],
            registry=registry,
        )

        #: deaths by cause, OOM kills, lifetimes, start phases, deployment outcomes
        self.tasks = TaskMetrics(
            registry, self.count_failed_start, start_phases_per_service=start_phases_per_service
        )

    def count_failed_start(self, failed: FailedStart) -> None:
        """A PENDING→STOPPED task (TaskMetrics.count_task, for processor and reconciler)."""
        self.pending_to_stopped.labels(
            account=failed.account,
            region=failed.region,
            cluster=failed.cluster,
            group=failed.group,
            stop_code=failed.stop_code,
        ).inc()

    def forget_services(self, gone: Iterable[tuple[str, str, str, str]]) -> None:
        """Drop the label children of services that are gone (account, region, cluster,
        service) from every instrument labelled by service or by group (`service:NAME`), so a
        long-lived process does not export them for ever. One pass over each instrument's
        children (prometheus_client lists them only privately: `_metrics`, `_labelnames`)."""
        keys = {k for a, r, c, s in gone for k in ((a, r, c, s), (a, r, c, f"service:{s}"))}
        for metric in vars(self).values():
            names = getattr(metric, "_labelnames", ())
            if not isinstance(metric, MetricWrapperBase) or "cluster" not in names:
                continue
            by = "service" if "service" in names else "group" if "group" in names else None
            if by is None or "account" not in names or "region" not in names:
                continue
            at = [names.index(n) for n in ("account", "region", "cluster", by)]
            for values in list(metric._metrics):
                if tuple(values[i] for i in at) in keys:
                    metric.remove(*values)
        self.tasks.forget_services(keys)

    def count_retry(self, operation: str) -> None:
        self.retries.labels(operation=operation).inc()

    def observe_write(self, table: str, seconds: float) -> None:
        child = self._write_children.get(table)
        if child is None:
            child = self._write_children.setdefault(table, self.write_seconds.labels(table))
        child.observe(seconds)

    def count_event(self, detail_type: str, outcome: str) -> None:
        key = (detail_type, str(outcome))
        child = self._event_children.get(key)
        if child is None:
            child = self._event_children.setdefault(key, self.events.labels(*key))
        child.inc()
