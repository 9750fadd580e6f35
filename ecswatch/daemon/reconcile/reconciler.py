"""The daemon's reconciliation thread: holds the lease, runs a pass when one is due, stops on time.

It never hurts the daemon: its own thread (nothing else waits on it: not /healthz, /readyz, nor
event processing), its own clients, its own Store with its own retry budget (a pass retrying
under DynamoDB throttling never spends the pipeline's, which would pause the consumer), its own
ECS rate budget, every wait on its own stop event, and every exception logged and retried at
the next tick. Every request of a pass passes the lease's guard first (guard.py): on stop the
pass ends at its next request (a sleeping retry wakes at once) and the lease is released, so
another replica takes over at once; a killed one's lease just expires.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import structlog

from ecswatch.config import Config
from ecswatch.daemon.aws.retry import WRITE, Retrier, RetryQuota
from ecswatch.daemon.reconcile.drift import Fix, Pass
from ecswatch.daemon.reconcile.ecs import ECS_READ, EcsApi, RateLimiter, Stopping
from ecswatch.daemon.reconcile.guard import LeaseGuard
from ecswatch.daemon.reconcile.lease import Lease
from ecswatch.daemon.reconcile.metrics import ReconcileMetrics
from ecswatch.daemon.reconcile.service_counts import ServiceCounts
from ecswatch.daemon.state.store import Outcome, Store, WriteResult
from ecswatch.domain.arns import account_region, cluster_name
from ecswatch.domain.deaths import Before, WriteCounts
from ecswatch.domain.events import Event

log = structlog.get_logger("ecswatch.daemon.reconcile.reconciler")


def lease_owner() -> str:
    """Unique per process: the host (the task's on ECS), the pid, and a random tag."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Reconciler:
    def __init__(
        self,
        config: Config,
        *,
        ecs: Any,
        dynamodb: Any,
        metrics: ReconcileMetrics,
        count_task: Callable[[Event, Before], WriteCounts | None],
        owner: str | None = None,
    ) -> None:
        """`ecs` and `dynamodb`: clients of its own, built with `guard.attempt_timeouts`."""
        self._config = config
        self._settings = config.reconcile
        self._dynamodb = dynamodb
        self._metrics = metrics
        self._count_task = count_task
        self._stop = threading.Event()
        self._limiter = RateLimiter(self._settings.max_api_calls_per_second, self._stop)
        self._api = EcsApi(
            ecs,
            Retrier(ECS_READ, abort=self._stop),
            self._limiter,
            on_call=metrics.count_call,
            on_throttle=metrics.count_throttle,
        )
        #: the reconciler's own DynamoDB retry budget, apart from the pipeline's
        self.retry_quota = RetryQuota()
        self._retrier = Retrier(WRITE, abort=self._stop, quota=self.retry_quota)
        self._store = Store(dynamodb, config.dynamodb.state_tables(), self._retrier)
        self.lease = Lease(
            dynamodb,
            config.dynamodb.service_table,
            owner or lease_owner(),
            self._settings.lease_seconds,
        )
        self._guard = LeaseGuard(self.lease, self._stop, lambda: self._observe_lease(True, False))
        self._guard.watch(ecs, dynamodb)
        self._services = ServiceCounts(
            self._api,
            dynamodb,
            config.dynamodb.service_table,
            self._retrier,
            idle_ttl_days=config.dynamodb.idle_service_ttl_days,
            window_ttl_days=config.dynamodb.stopped_task_ttl_days,
            checkpoint=self._guard.check,
        )
        self._thread = threading.Thread(target=self._run, name="ecswatch-reconciler", daemon=True)

    def start(self) -> None:
        if self._settings.interval_seconds > 0:
            self._thread.start()

    def stop(self) -> None:
        """Ask the thread to stop; it abandons a pass at its next API call."""
        self._stop.set()

    def join(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the thread (and its lease release); True if done."""
        if self._thread.is_alive():
            self._thread.join(timeout=max(0.0, timeout))
        return not self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception as exc:
                log.warning(
                    "reconcile_tick_failed", error=type(exc).__name__, detail=str(exc)[:300]
                )
            self._stop.wait(self._wait_seconds())
        try:
            self.lease.release()
        except Exception as exc:
            log.warning("reconcile_release_failed", error=type(exc).__name__)
        self._metrics.leader.set(0)

    def _tick(self) -> None:
        had = self.lease.held()
        holds = self.lease.renew()
        self._observe_lease(had, holds)
        if holds and time.time() >= self.lease.state.last_pass_at + self._settings.interval_seconds:
            self.run_pass()

    def _observe_lease(self, had: bool, holds: bool) -> None:
        self._metrics.leader.set(1 if holds else 0)
        if self.lease.state.last_success_at:
            self._metrics.last_success.set(self.lease.state.last_success_at)
        if holds and not had:
            log.info("reconcile_lease_taken", owner=self.lease.owner)
        elif had and not holds:
            log.warning(
                "reconcile_lease_lost", owner=self.lease.owner, holder=self.lease.state.owner
            )

    def _wait_seconds(self) -> float:
        """Holder: until the next renewal or pass; others: until the lease can expire."""
        third = self._settings.lease_seconds / 3
        now = time.time()
        if self.lease.held():
            next_pass = self.lease.state.last_pass_at + self._settings.interval_seconds - now
            return max(0.05, min(third, next_pass))
        return max(0.2, min(third, self.lease.state.expires_at - now + 0.1))

    def run_pass(self) -> str:
        """One pass under the lease; returns its result (success, failed, aborted)."""
        started = time.time()
        if not self.lease.renew(last_pass_at=started):
            return "aborted"
        self._limiter.reset()
        drift = Pass(
            self._api, self._dynamodb, self._store, self._config, self._retrier,
            apply=True, on_fix=self._fixed, checkpoint=self._guard.check, on_count=self._counted,
            stop=self._stop,
        )  # fmt: skip
        calls_before = self._api.calls
        log.info("reconcile_pass_started", owner=self.lease.owner, started_at=round(started, 3),
                 token=self.lease.token)  # fmt: skip
        result, error, services = "success", "", 0
        try:
            with self._guard.active():
                clusters = drift.run(self._settings.cluster_list())
                services = self._services.sync(clusters, token=self.lease.token)
        except Stopping:
            result = "aborted"
        except Exception as exc:
            # A retry cut short by the stop ends in its last error: that is an abort too.
            result = "aborted" if self._stop.is_set() else "failed"
            error = f"{type(exc).__name__}: {str(exc)[:300]}"
        duration = time.time() - started
        if result == "success":
            self.lease.renew(last_success_at=time.time())
            self._metrics.last_success.set(self.lease.state.last_success_at)
        self._metrics.passes.labels(result=result).inc()
        self._metrics.last_duration.set(duration)
        self._metrics.skipped.labels(reason="no_version").inc(drift.tally.skipped_without_version)
        log.log(
            20 if result != "failed" else 30,
            "reconcile_pass_finished",
            result=result,
            error=error or None,
            duration_seconds=round(duration, 3),
            api_calls=self._api.calls - calls_before,
            skipped_without_version=drift.tally.skipped_without_version,
            services=services,
            **drift.tally.fixes,
        )
        return result

    def _fixed(self, fix: Fix, result: WriteResult | None) -> None:
        if result is None or result.outcome is not Outcome.APPLIED:
            return
        account, region = account_region(fix.cluster_arn)
        self._metrics.fixes.labels(
            account, region, cluster_name(fix.cluster_arn), fix.resource.label, fix.kind
        ).inc()
        log.info("reconcile_fixed", kind=fix.kind, arn=fix.arn, version=fix.version,
                 stored_version=fix.stored_version, status=fix.status)  # fmt: skip

    def _counted(self, event: Event, before: Before) -> None:
        """A pass's write (a lost event's state, or a count `ecswatch reconcile --apply` left
        owed) counts as the event would have, once: the real event is then a duplicate."""
        counts = self._count_task(event, before)
        death = counts.death if counts is not None else None
        if death is not None and death.failed_start is not None:
            log.info("task_failed_to_start", arn=event.arn, cluster=death.failed_start.cluster,
                     group=death.failed_start.group, stop_code=death.failed_start.stop_code,
                     found_by="reconcile")  # fmt: skip
