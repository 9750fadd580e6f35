"""Queue depths from ecswatch itself: about once a minute, one GetQueueAttributes on the queue
and one on the DLQ, as `ecswatch_queue_messages{queue, state}`, so a redrive that SQS did (which
ecswatch never sees) shows in Prometheus even where there is no CloudWatch."""

from __future__ import annotations

import threading
from typing import Any

import structlog

from ecswatch.daemon.expose.metrics import Metrics

log = structlog.get_logger("ecswatch.daemon.expose.depth")

INTERVAL_SECONDS = 60.0
STATES = {
    "visible": "ApproximateNumberOfMessages",
    "in_flight": "ApproximateNumberOfMessagesNotVisible",
    "delayed": "ApproximateNumberOfMessagesDelayed",
}


class DepthPoller:
    """A thread of its own; a failed poll keeps the last values and is logged at DEBUG (the
    receive loop already reports an unreachable SQS)."""

    def __init__(
        self,
        sqs: Any,
        metrics: Metrics,
        queues: dict[str, str],
        *,
        interval: float = INTERVAL_SECONDS,
    ) -> None:
        self._sqs, self._metrics, self._interval = sqs, metrics, interval
        self._queues = {name: url for name, url in queues.items() if url}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ecswatch-depth", daemon=True)

    def poll(self) -> None:
        for name, url in self._queues.items():
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=list(STATES.values())
            )["Attributes"]
            for state, attribute in STATES.items():
                value = float(attributes.get(attribute, 0))
                self._metrics.queue_messages.labels(queue=name, state=state).set(value)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except Exception as exc:
                log.debug("queue_depth_failed", error=type(exc).__name__, detail=str(exc)[:300])
            self._stop.wait(self._interval)
