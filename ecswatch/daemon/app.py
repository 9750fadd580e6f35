"""Wiring and lifecycle of the daemon: HTTP first, clients once, workers, ordered stop."""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from types import FrameType

import structlog
from prometheus_client import CollectorRegistry

from ecswatch import __version__
from ecswatch.config import Config, ReconcileConfig
from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import QUEUE_OP, WRITE, Retrier, RetryQuota
from ecswatch.daemon.expose.depth import DepthPoller
from ecswatch.daemon.expose.http import HttpServer
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.expose.preflight import wait_until_ready
from ecswatch.daemon.expose.service_gauges import (
    MIN_BUCKET_SECONDS,
    STALE_COUNT_INTERVALS,
    ServiceStateCollector,
)
from ecswatch.daemon.pipeline.fetcher import error_backoff, fetcher_threads
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Queue
from ecswatch.daemon.pipeline.worker import WorkerPool, deleter_threads
from ecswatch.daemon.reconcile.guard import attempt_timeouts
from ecswatch.daemon.reconcile.metrics import ReconcileMetrics
from ecswatch.daemon.reconcile.reconciler import Reconciler
from ecswatch.daemon.state.service_journal import ServiceJournal
from ecswatch.daemon.state.service_reads import ServiceReader
from ecswatch.daemon.state.service_state import ServiceStore
from ecswatch.daemon.state.store import Store

log = structlog.get_logger("ecswatch.daemon.app")


class Daemon:
    """One ecswatch process's consumer; `run` is the CLI's, `start`/`stop` let the demo embed it."""

    def __init__(self, config: Config, registry: CollectorRegistry | None = None) -> None:
        self.config = config
        tables = config.dynamodb.state_tables()
        self.metrics = Metrics(
            registry or CollectorRegistry(),
            tables=(
                *tables.values(),
                config.dynamodb.service_table,
                config.dynamodb.service_event_table,
            ),
            start_phases_per_service=config.metrics.start_phases_per_service,
        )
        self.stop_requested = threading.Event()
        self._pool: WorkerPool | None = None
        self._depth: DepthPoller | None = None
        self._service_state: ServiceStateCollector | None = None
        self._reconciler: Reconciler | None = None
        self.http = HttpServer(
            config.metrics.host,
            config.metrics.port,
            self.metrics.registry,
            healthy=self._healthy,
            ready=self._ready,
        )
        self._tables = tables

    def _healthy(self) -> tuple[bool, str]:
        """Green while the loops go round, paused or not (a restart does not fix a revoked
        permission); red when a thread died or a loop is wedged, so ECS replaces the task."""
        pool = self._pool
        if pool is None:
            return True, "starting"
        if not pool.all_alive():
            return False, "a worker thread died"
        stalled = pool.stalled(self.config.stall_seconds)
        if stalled:
            return False, f"no progress for {self.config.stall_seconds:.0f}s: {', '.join(stalled)}"
        return True, "paused, probing" if pool.pause.paused else "ok"

    def _ready(self) -> tuple[bool, str]:
        pool = self._pool
        if pool is not None and pool.pause.paused:
            return False, f"paused: {pool.pause.reason}"
        since = pool.seconds_since_receive() if pool is not None else None
        window = self.config.readiness_window_seconds
        if since is None:
            return False, "no successful receive yet"
        if since > window:
            return False, f"last successful receive {since:.0f}s ago (> {window:.0f}s)"
        return True, "ok"

    def start(self) -> None:
        # The HTTP server comes first, before any AWS call, so health checks answer at once.
        self.http.start()
        log.info(
            "ecswatch_starting",
            version=__version__,
            metrics_port=self.http.port,
            workers=self.config.workers.count,
            queue_url=self.config.sqs.queue_url,
        )
        cfg = self.config
        abort = threading.Event()
        # Every thread that may call AWS at once keeps its own connection: workers (writes and
        # dead-letters), fetchers, deleters, the heartbeat and the service-state collector.
        count = cfg.workers.count
        pool_size = count + fetcher_threads(count) + deleter_threads(count) + 4
        sqs = make_client(
            "sqs",
            cfg.aws,
            read_timeout=cfg.sqs.wait_time_seconds + 10,  # longer than the long poll, always
            max_pool_connections=pool_size,
        )
        dynamodb = make_client("dynamodb", cfg.aws, max_pool_connections=pool_size)
        # Before consuming: a misconfiguration exits 2 now, not after the queue has drained.
        if not wait_until_ready(cfg, sqs, dynamodb, self.stop_requested, backoff=error_backoff):
            return
        queue = Queue(
            sqs,
            cfg.sqs.queue_url,
            dead_letter_queue_url=cfg.sqs.dead_letter_queue_url,
            retrier=Retrier(
                QUEUE_OP, abort=abort, quota=self._quota("sqs"), on_retry=self.metrics.count_retry
            ),
        )
        write_retrier = Retrier(
            WRITE, abort=abort, quota=self._quota("dynamodb"), on_retry=self.metrics.count_retry
        )
        store = Store(
            dynamodb, self._tables, write_retrier, observe_write=self.metrics.observe_write
        )
        services = ServiceStore(
            dynamodb,
            cfg.dynamodb.service_table,
            write_retrier,
            event_table=cfg.dynamodb.service_event_table,
            event_ttl_days=cfg.dynamodb.stopped_task_ttl_days,
            idle_ttl_days=cfg.dynamodb.idle_service_ttl_days,
            observe_write=self.metrics.observe_write,
        )
        self._service_state = self._service_gauges(dynamodb)
        self.metrics.registry.register(self._service_state)
        self._service_state.start()
        processor = Processor(
            store,
            queue,
            self.metrics,
            services=services,
            service_state=self._service_state,
            redact_environment=cfg.events.redact_environment,
            stopped_task_ttl_days=cfg.dynamodb.stopped_task_ttl_days,
        )
        self._pool = WorkerPool(
            queue,
            processor,
            self.metrics,
            count=cfg.workers.count,
            wait_time_seconds=cfg.sqs.wait_time_seconds,
            max_messages=cfg.sqs.max_messages,
            visibility_timeout=cfg.sqs.visibility_timeout,
            abort=abort,
        )
        self._pool.start()
        self._depth = DepthPoller(
            sqs,
            self.metrics,
            {"source": cfg.sqs.queue_url, "dead_letter": cfg.sqs.dead_letter_queue_url},
        )
        self._depth.start()
        self._start_reconciler()

    def _service_gauges(self, dynamodb: object) -> ServiceStateCollector:
        """The per-service gauges: rescans, the journal of the other replicas' changes, and
        counts older than three reconcile intervals dropped (the default interval when this
        replica does not reconcile: replicas share a config)."""
        cfg = self.config
        refresh = cfg.metrics.service_state_refresh_seconds
        journal = ServiceJournal(
            dynamodb,
            cfg.dynamodb.service_table,
            writer=uuid.uuid4().hex[:8],
            bucket_seconds=max(refresh / 3, MIN_BUCKET_SECONDS),
        )
        interval = cfg.reconcile.interval_seconds or ReconcileConfig().interval_seconds
        return ServiceStateCollector(
            ServiceReader(dynamodb, cfg.dynamodb.service_table),
            refresh,
            journal=journal if refresh > 0 else None,
            counts_max_age=STALE_COUNT_INTERVALS * interval,
            forget=self.metrics.forget_services,
        )

    def _start_reconciler(self) -> None:
        """Its own thread and clients (timeouts that fit its lease: reconcile/guard.py): nothing
        in the pipeline waits on it, and it spends none of the pipeline's retry budget."""
        cfg = self.config
        metrics = ReconcileMetrics(
            self.metrics.registry, interval_seconds=cfg.reconcile.interval_seconds
        )
        if cfg.reconcile.interval_seconds <= 0:
            return
        connect, read = attempt_timeouts(cfg.reconcile.lease_seconds)
        self._reconciler = Reconciler(
            cfg,
            ecs=make_client("ecs", cfg.aws, connect_timeout=connect, read_timeout=read),
            dynamodb=make_client("dynamodb", cfg.aws, connect_timeout=connect, read_timeout=read),
            metrics=metrics,
            count_task=self.metrics.tasks.count_task,
        )
        self._reconciler.start()

    def _quota(self, service: str) -> RetryQuota:
        """One retry budget per service for the whole process, as botocore keeps one per
        client: every thread's retries draw on it."""
        quota = RetryQuota()
        self.metrics.retry_budget.labels(service=service).set_function(lambda: quota.tokens)
        return quota

    def stop(self) -> bool:
        """Drain the workers under shutdown_timeout, then the HTTP server; True if all drained."""
        timeout = self.config.workers.shutdown_timeout
        log.info("ecswatch_stopping", shutdown_timeout=timeout)
        # One deadline for every component, each taking the time left: the pool (workers,
        # deletes, heartbeat) gets all but the last half second, which the service-state
        # collector, the reconciler and the HTTP server share. Workers stop before the HTTP
        # server so health checks stay green while we drain.
        deadline = time.monotonic() + timeout
        if self._reconciler is not None:
            self._reconciler.stop()  # abandons its pass while the workers drain
        drained = self._pool.shutdown(deadline - 0.5) if self._pool is not None else True
        if self._service_state is not None:
            self._service_state.stop(timeout=max(0.1, deadline - time.monotonic()))
        if self._depth is not None:
            self._depth.stop(timeout=max(0.1, deadline - time.monotonic()))
        if self._reconciler is not None:
            self._reconciler.join(max(0.1, deadline - time.monotonic()))
        self.http.stop()
        log.info("ecswatch_stopped", drained=drained)
        return drained

    def run(self) -> int:
        """The daemon as `ecswatch run` runs it: until SIGTERM/SIGINT, then exit 0."""
        self._install_signal_handlers()
        self.start()
        self.stop_requested.wait()
        self.stop()
        return 0

    def _install_signal_handlers(self) -> None:
        def handle(signum: int, frame: FrameType | None) -> None:
            if self.stop_requested.is_set():
                # A second signal: the operator wants out now. Unfinished messages are redelivered.
                os._exit(1)
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
