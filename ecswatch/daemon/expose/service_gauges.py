"""The per-service gauges every replica exports from the stored service state: task-start
impairment, deployments in progress, and the desired/running/pending counts.

How a replica keeps them current (the table's reads are the cost, see state/service_journal.py):
its own applied events show at once and are published to the journal; the other replicas'
arrive from the journal within about one refresh; a full rescan every RESCAN_REFRESHES
refreshes (300 s by default) brings counts, expiries and anything the journal missed. At 5,000
services of ~1 KB that is ~625 RCU per 300 s plus one small GetItem per bucket: ~2 RCU/s per
replica instead of ~21. Alternatives weighed: one replica (a lease holder) publishing a summary
item still has to learn the others' events (by scanning: its own ~21 RCU/s), a summary of 5,000
services is ~0.5 MB (past DynamoDB's 400 KB item, so sharded), and a dead holder freezes every
replica's gauges until a new one takes over; a sparse GSI ordered by update time would read only
what changed but changes the table's schema (contract, bootstrap, CloudFormation, every writer
setting the key) and still misses expiries; a longer rescan alone leaves a STEADY_STATE applied
on another replica unseen for minutes while this one still says impaired (a false critical).

Stale and gone: counts older than `counts_max_age` (3 reconcile intervals) are not exported, so
ECSServiceBelowDesiredCount never judges frozen numbers; a service whose item expired or vanished
is no longer exported, and `forget` is called with its labels so per-service instruments elsewhere
drop their children too. A scrape never waits on DynamoDB.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ecswatch.domain.arns import account_region
from ecswatch.domain.services import (
    IN_PROGRESS,
    GaugeChange,
    ServiceEvent,
    ServiceState,
    TaskCounts,
    change_of,
    merged,
    newest,
)

log = structlog.get_logger("ecswatch.daemon.expose.service_gauges")

RESCAN_REFRESHES = 10
MIN_BUCKET_SECONDS = 1.0
STALE_COUNT_INTERVALS = 3  # counts older than this many reconcile intervals are not exported
COUNT_GAUGES = (
    ("ecswatch_service_desired_tasks", "desiredCount: tasks the service wants (from the ECS API)."),
    ("ecswatch_service_running_tasks", "runningCount: tasks RUNNING (from the ECS API)."),
    ("ecswatch_service_pending_tasks", "pendingCount: tasks PENDING (from the ECS API)."),
)
ServiceLabels = tuple[str, str, str, str]  # account, region, cluster, service


class ServiceStates(Protocol):
    def scan(self) -> dict[str, ServiceState]: ...


class Journal(Protocol):
    bucket_seconds: float

    def bucket(self, at: float | None = None) -> int: ...
    def publish(self, changes: list[GaugeChange]) -> bool: ...
    def read(self, bucket: int) -> list[GaugeChange]: ...


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


def labels_of(arn: str, state: ServiceState) -> ServiceLabels:
    account, region = account_region(arn)
    return account, region, state.cluster, state.service


class ServiceStateCollector(Collector):
    """ecswatch_service_task_start_impaired, ecswatch_deployments_in_progress and the counts."""

    def __init__(
        self,
        store: ServiceStates,
        refresh_seconds: float,
        *,
        journal: Journal | None = None,
        counts_max_age: float = float("inf"),
        forget: Callable[[list[ServiceLabels]], None] = lambda gone: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._refresh_seconds = refresh_seconds
        self._journal = journal
        self._counts_max_age = counts_max_age
        self._forget = forget
        self._clock = clock
        self._states: dict[str, ServiceState] = {}
        self._touched: dict[str, float] = {}  # changes since the last rescan began, by ARN
        self._pending: dict[tuple[str, str], GaugeChange] = {}  # to publish
        self._exported: dict[str, ServiceLabels] = {}
        self._last_read = -1  # the last journal bucket read
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
        # Unflushed changes are not sent after the signal (no call past the deadline): the
        # others get them from their next rescan.

    def applied(self, event: ServiceEvent) -> None:
        """This replica applied `event`: show it now, and tell the others (journal)."""
        change = change_of(event)
        if change is None:
            return
        self._merge([change])
        if self._journal is not None:
            with self._lock:
                self._pending[(change.service_arn, change.register)] = change

    def _merge(self, changes: list[GaugeChange]) -> None:
        now = self._clock()
        with self._lock:
            for change in changes:
                arn = change.service_arn
                self._states[arn] = merged(self._states.get(arn), change)
                self._touched[arn] = now

    def refresh(self) -> None:
        """A full rescan; parts newer than the scan (applied or journaled meanwhile) are kept."""
        began = self._clock()
        scanned = self._store.scan()
        with self._lock:
            for arn, known in self._states.items():
                if arn in scanned:
                    scanned[arn] = newest(scanned[arn], known)
                elif self._touched.get(arn, -1.0) >= began:
                    scanned[arn] = known  # created after the scan passed its key
            self._states = scanned
            self._touched = {a: t for a, t in self._touched.items() if t >= began}
        # Expired items still in the table (TTL deletes within days) are forgotten at every
        # rescan too: a replica that never exported one may hold children from late events.
        self._forget_gone(
            [labels_of(a, s) for a, s in scanned.items() if s.exported(began, 0) is None]
        )

    def _flush(self) -> None:
        if self._journal is None:
            return
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
        if pending:
            self._journal.publish(pending)

    def _read_journal(self, journal: Journal) -> None:
        """Read each bucket that ended at least half a bucket ago, once."""
        newest_due = journal.bucket(self._clock() - 1.5 * journal.bucket_seconds)
        first = max(self._last_read + 1, newest_due - 8)  # older ones: the next rescan
        for bucket in range(first, newest_due + 1):
            self._merge(journal.read(bucket))
            self._last_read = bucket

    def _forget_gone(self, expired: list[ServiceLabels] | None = None) -> None:
        """Tell `forget` about services exported before and gone (expired or deleted) now."""
        now = self._clock()
        with self._lock:
            live = {
                arn: labels_of(arn, state)
                for arn, state in self._states.items()
                if state.exported(now, self._counts_max_age) is not None
            }
            gone = [labels for arn, labels in self._exported.items() if arn not in live]
            self._exported = live
        gone += expired or []
        if gone:
            self._forget(gone)

    def _run(self) -> None:
        bucket_seconds = self._journal.bucket_seconds if self._journal else self._refresh_seconds
        tick = bucket_seconds / 2
        rescan_every = self._refresh_seconds * RESCAN_REFRESHES if self._journal else 0.0
        next_rescan = 0.0
        while True:
            try:
                self._flush()
                if self._clock() >= next_rescan:
                    self.refresh()
                    next_rescan = self._clock() + rescan_every
                elif self._journal is not None:
                    self._read_journal(self._journal)
                    self._forget_gone()
            except Exception as exc:
                log.warning(
                    "service_state_refresh_failed", error=type(exc).__name__, detail=str(exc)[:300]
                )
            if self._stop.wait(tick if self._journal else self._refresh_seconds):
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
        now = self._clock()
        with self._lock:
            states = list(self._states.items())
        shown = []
        for arn, stored in states:
            state = stored.exported(now, self._counts_max_age)
            if state is None:
                continue
            shown.append((arn, state.cluster, state.service, state.counts))
            labels = [*account_region(arn), state.cluster, state.service]
            if state.impaired is not None:
                impaired.add_metric(labels, 1.0 if state.impaired else 0.0)
            if state.deployment_state is not None:
                deploying.add_metric(labels, 1.0 if state.deployment_state == IN_PROGRESS else 0.0)
        yield impaired
        yield deploying
        yield from count_gauges(shown)
