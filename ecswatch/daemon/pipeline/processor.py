"""What happens to one message: parse, write, count, log; the answer is its fate.

A message is deleted only once its fate is durable: applied, duplicate or stale (the item
already holds that version or a newer one), ignored, or copied to the DLQ. A failure that is
the world's, not the message's (errors.py), is `systemic` on its route (fate.py): the pause
policy (pause.py) holds the message instead of letting its receive count run towards the
redrive policy. Anything else is kept and SQS redelivers it; a redelivery of an applied event
is then a harmless duplicate.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

import structlog

from ecswatch.daemon.aws.errors import is_aws_error, systemic_reason
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.expose.service_gauges import ServiceStateCollector
from ecswatch.daemon.pipeline import fate
from ecswatch.daemon.pipeline.fate import Fate
from ecswatch.daemon.pipeline.queue import Message, Queue, TooLargeToCopyError
from ecswatch.daemon.state.dynamo import UnstorableEventError
from ecswatch.daemon.state.service_state import ServiceStore
from ecswatch.daemon.state.store import Outcome, Store
from ecswatch.domain.events import (
    Event,
    Ignored,
    Invalid,
    build_item,
    detail_type_of,
    event_lag_seconds,
    is_expired,
    parse_message,
)
from ecswatch.domain.services import Kind, ServiceEvent

log = structlog.get_logger("ecswatch.daemon.pipeline.processor")


SUMMARY_SECONDS = 60.0  # one INFO line a minute says what the per-message DEBUG lines would


def utc_now() -> datetime:
    return datetime.now(UTC)


class Summary:
    """At most one `events_summary` line per `every` seconds: events by outcome since the last,
    and the mean lag of the events applied in between.

    Read from the metrics, so it costs a float comparison per message and a registry read a
    minute; at INFO it replaces one line per message (the largest per-event cost after botocore).
    """

    def __init__(self, metrics: Metrics, *, every: float) -> None:
        self._metrics = metrics
        self._every = every
        self._lock = threading.Lock()
        self._since = time.monotonic()
        self._last = self._totals()

    def due(self) -> None:
        if time.monotonic() - self._since < self._every:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._since < self._every:
                return  # another worker just wrote it
            totals = self._totals()
            delta = {k: v - self._last.get(k, 0.0) for k, v in sorted(totals.items())}
            lag_count, lag_sum = delta.pop("lag_count"), delta.pop("lag_sum")
            log.info(
                "events_summary",
                seconds=round(now - self._since, 1),
                **{k: int(v) for k, v in delta.items()},
                lag_seconds_mean=round(lag_sum / lag_count, 3) if lag_count else None,
            )
            self._since, self._last = now, totals

    def _totals(self) -> dict[str, float]:
        totals: dict[str, float] = {}
        for metric in self._metrics.events.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total"):
                    outcome = sample.labels["outcome"]
                    totals[outcome] = totals.get(outcome, 0.0) + sample.value
        for metric in self._metrics.event_lag.collect():  # applied events' lag, for its mean
            for sample in metric.samples:
                if sample.name.endswith(("_count", "_sum")):
                    totals["lag_" + sample.name.rsplit("_", 1)[1]] = sample.value
        return totals


class Processor:
    def __init__(
        self,
        store: Store,
        queue: Queue,
        metrics: Metrics,
        *,
        services: ServiceStore | None = None,
        service_state: ServiceStateCollector | None = None,
        redact_environment: bool = True,
        stopped_task_ttl_days: int = 7,
        now: Callable[[], datetime] = utc_now,
        summary_seconds: float = SUMMARY_SECONDS,
    ) -> None:
        self._store = store
        self._queue = queue
        self._metrics = metrics
        self._services = services
        self._service_state = service_state
        self._redact = redact_environment
        self._ttl_days = stopped_task_ttl_days
        self._now = now
        self._summary = Summary(metrics, every=summary_seconds)

    def handle(self, message: Message) -> Fate:
        """Process one message and say what became of it; raises only on a bug."""
        started = time.perf_counter()
        parsed = parse_message(message.body, redact=self._redact)
        if isinstance(parsed, Invalid):
            return self._invalid(message, parsed)
        if isinstance(parsed, Ignored):
            self._metrics.count_event(parsed.detail_type, "ignored")
            log.debug(
                "message_ignored", message_id=message.message_id, detail_type=parsed.detail_type
            )
            return fate.DELETE
        if is_expired(parsed, self._now(), self._ttl_days):
            return self._expired(message, parsed)
        if isinstance(parsed, ServiceEvent):
            return self._apply_service(message, parsed, started)
        return self._apply(message, parsed, started)

    def _expired(self, message: Message, event: Event | ServiceEvent) -> Fate:
        """Older than the TTL window: applying it could count or resurrect what has expired."""
        detail_type = detail_type_of(event)
        self._metrics.count_event(detail_type, "expired")
        log.warning(
            "event_expired",
            message_id=message.message_id,
            detail_type=detail_type,
            arn=event.arn if isinstance(event, Event) else event.service_arn,
            event_time=event.event_time if isinstance(event, Event) else event.at,
            ttl_days=self._ttl_days,
        )
        return fate.DELETE

    def _apply(self, message: Message, event: Event, started: float) -> Fate:
        now = self._now()
        item = build_item(event, now=now, stopped_task_ttl_days=self._ttl_days)
        try:
            result = self._store.apply(event, item)
        except UnstorableEventError as exc:
            return self._invalid(message, Invalid(exc.reason, str(exc), event.detail_type))
        except Exception as exc:
            return self._failed(
                message,
                event.detail_type,
                exc,
                fate.RESOURCE_ROUTES[event.resource],
                arn=event.arn,
                version=event.version,
            )
        self._metrics.count_event(event.detail_type, result.outcome)
        if result.outcome is Outcome.APPLIED:
            lag = event_lag_seconds(event.event_time, now)
            if lag is not None:
                self._metrics.event_lag.observe(lag)
        failed = counts = None
        if result.count_from is not None:  # applied, or a count another process left owed
            counts = self._metrics.tasks.count_task(event, result.count_from)
            failed = counts.death.failed_start if counts and counts.death else None
            if failed is not None:
                # What an operator acts on, at INFO; the per-message line below is DEBUG.
                log.info(
                    "task_failed_to_start",
                    message_id=message.message_id,
                    arn=event.arn,
                    cluster=failed.cluster,
                    group=failed.group,
                    stop_code=failed.stop_code,
                )
        self._summary.due()
        log.debug(
            "message_processed",
            message_id=message.message_id,
            detail_type=event.detail_type,
            arn=event.arn,
            version=event.version,
            last_status=event.detail.get("lastStatus"),
            outcome=str(result.outcome),
            stored_version=result.other_version,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            failed_start=failed is not None,
            death=counts.death.cause.value if counts and counts.death else None,
            phases=len(counts.phases) if counts else 0,
        )
        return fate.stored(event.resource)

    def _apply_service(self, message: Message, event: ServiceEvent, started: float) -> Fate:
        detail_type = detail_type_of(event)
        if self._services is None:
            self._metrics.count_event(detail_type, "ignored")
            return fate.DELETE
        try:
            outcome = self._services.apply(event)
        except UnstorableEventError as exc:
            return self._invalid(message, Invalid(exc.reason, str(exc), detail_type))
        except Exception as exc:
            return self._failed(
                message,
                detail_type,
                exc,
                fate.SERVICE_ROUTE,
                arn=event.service_arn,
                event_id=event.event_id,
            )
        self._metrics.count_event(detail_type, outcome)
        if outcome is not Outcome.DUPLICATE:  # each event id counts once, in order or not
            if event.kind is Kind.ACTION:
                self._metrics.service_events.labels(
                    event.account, event.region, event.cluster, event.service, event.event_name
                ).inc()
            else:
                self._metrics.deployments.labels(
                    event.account,
                    event.region,
                    event.cluster,
                    event.service,
                    event.deployment_state,
                ).inc()
                self._metrics.tasks.count_deployment(event)
        if outcome is Outcome.APPLIED and self._service_state is not None:
            self._service_state.applied(event)
        self._summary.due()
        log.debug(
            "message_processed",
            message_id=message.message_id,
            detail_type=detail_type,
            arn=event.service_arn,
            event_id=event.event_id,
            event_name=event.event_name,
            outcome=str(outcome),
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return fate.written(fate.SERVICE_ROUTE)

    def _failed(
        self, message: Message, detail_type: str, exc: Exception, route: str, **fields: object
    ) -> Fate:
        """A write that failed past its retries and is not the item's fault: the world's.
        Logged at DEBUG: the pause logs once per transition, not once per message."""
        reason = systemic_reason(exc)
        if reason is None:
            raise exc
        self._metrics.count_event(detail_type, "failed")
        log.debug(
            "event_failed",
            message_id=message.message_id,
            error=type(exc).__name__,
            detail=str(exc)[:300],
            receive_count=message.receive_count,
            reason=reason,
            **fields,
        )
        return fate.systemic(reason, route, str(exc))

    def _invalid(self, message: Message, invalid: Invalid) -> Fate:
        self._metrics.count_event(invalid.detail_type, "invalid")
        fields = {
            "message_id": message.message_id,
            "reason": invalid.reason,
            "error": invalid.message[:300],
            "body_bytes": len(message.body),
            "receive_count": message.receive_count,
        }
        if not self._queue.dead_letter_queue_url:
            # Left for the source queue's redrive policy (maxReceiveCount) to move it.
            log.warning("message_invalid_kept", **fields)
            return fate.KEEP
        try:
            self._queue.dead_letter(message, invalid.reason, invalid.message)
        except TooLargeToCopyError as exc:
            # Settled by SQS instead: after maxReceiveCount the redrive policy moves it whole.
            log.warning("message_invalid_too_large_to_copy", copy_error=str(exc), **fields)
            return fate.KEEP
        except Exception as exc:
            if not is_aws_error(exc):
                raise
            reason = systemic_reason(exc) or "rejected_request"
            log.debug("dead_letter_failed", error=type(exc).__name__, **fields)
            return fate.systemic(reason, fate.DEAD_LETTER_ROUTE, str(exc))
        self._metrics.dead_lettered.labels(reason=invalid.reason).inc()
        log.warning("message_dead_lettered", **fields)
        return fate.DEAD_LETTERED
