"""Service state in DynamoDB (ECSServiceState): one conditional UpdateItem per event, and the
gauges derived from the table, not from one replica's memory.

Correctness: the write applies only if the event sorts after the stored one of its kind
(`attribute_not_exists(k) OR k < :k`, one k per part of the state: impairment, deployment,
last other action) and its id was never seen (`NOT contains(seen, :id)`),
and records the id in the same atomic write. A failed condition whose item already holds the id
is a duplicate; otherwise the event is older than the stored state but new, and a second
conditional write (`ADD seen :id` if absent) lets exactly one replica count it. So every event
id is counted once, and the stored state is that of the latest event, whatever the order.
Replicas see different parts of the stream, so each replica's gauges come from a periodic scan
of the table (and its own writes in between): all replicas export the same, stored, state.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import structlog
from botocore.exceptions import ClientError
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ecswatch.daemon.dynamo import is_condition_failure, scan, write
from ecswatch.daemon.lease import is_lease_key
from ecswatch.daemon.retry import Retrier
from ecswatch.daemon.store import Outcome
from ecswatch.domain.arns import account_region
from ecswatch.domain.services import IN_PROGRESS, ServiceEvent

log = structlog.get_logger("ecswatch.daemon.service_state")

SORT_KEY = {
    "impairment": "impairmentKey",
    "action": "lastActionKey",
    "deployment": "lastDeploymentKey",
}
CONDITION = "(attribute_not_exists(#key) OR #key < :key) AND NOT contains(#seen, :id)"


@dataclass(frozen=True, slots=True)
class ServiceState:
    cluster: str
    service: str
    impaired: bool | None
    deployment_state: str | None


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def update_request(table: str, event: ServiceEvent) -> dict[str, Any]:
    """The single conditional UpdateItem that records `event`."""
    values: dict[str, Any] = {
        ":key": _s(event.sort_key),
        ":id": _s(event.event_id),
        ":ids": {"SS": [event.event_id]},
        ":cluster": _s(event.cluster),
        ":service": _s(event.service),
        ":at": _s(event.at),
        ":name": _s(event.event_name),
        ":reason": _s(event.reason),
    }
    sets = ["#key = :key", "clusterName = :cluster", "serviceName = :service"]
    if event.register == "impairment":
        sets += ["taskStartImpaired = :impaired", "impairedChangedAt = :at",
                 "impairmentEventName = :name", "impairmentReason = :reason"]  # fmt: skip
        values[":impaired"] = {"BOOL": bool(event.impaired)}
    elif event.register == "action":
        sets += ["lastEventName = :name", "lastEventType = :type", "lastActionAt = :at",
                 "lastActionReason = :reason"]  # fmt: skip
        values[":type"] = _s(event.event_type)
    else:
        sets += ["deploymentId = :deployment", "deploymentState = :state", "deploymentAt = :at",
                 "deploymentEventName = :name", "deploymentReason = :reason"]  # fmt: skip
        values[":deployment"] = _s(event.deployment_id)
        values[":state"] = _s(event.deployment_state)
    return {
        "TableName": table,
        "Key": {"serviceArn": _s(event.service_arn)},
        "UpdateExpression": f"SET {', '.join(sets)} ADD #seen :ids",
        "ConditionExpression": CONDITION,
        "ExpressionAttributeNames": {"#key": SORT_KEY[event.register], "#seen": "seenEventIds"},
        "ExpressionAttributeValues": values,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


class ServiceStore:
    def __init__(
        self,
        client: Any,
        table: str,
        retrier: Retrier,
        *,
        observe_write: Callable[[str, float], None] = lambda table, seconds: None,
    ) -> None:
        self._client = client
        self.table = table
        self._retrier = retrier
        self._observe_write = observe_write

    def apply(self, event: ServiceEvent) -> Outcome:
        """APPLIED: now the latest; STALE: older but new (count it); DUPLICATE: seen before."""
        try:
            self._update(update_request(self.table, event))
            return Outcome.APPLIED
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            seen = exc.response.get("Item", {}).get("seenEventIds", {}).get("SS", [])
            if event.event_id in seen:
                return Outcome.DUPLICATE
        try:  # older than the stored state, never seen: record the id, once, to count it once
            self._update(
                {
                    "TableName": self.table,
                    "Key": {"serviceArn": _s(event.service_arn)},
                    "UpdateExpression": "ADD #seen :ids",
                    "ConditionExpression": "NOT contains(#seen, :id)",
                    "ExpressionAttributeNames": {"#seen": "seenEventIds"},
                    "ExpressionAttributeValues": {
                        ":id": _s(event.event_id),
                        ":ids": {"SS": [event.event_id]},
                    },
                }
            )
        except ClientError as exc:
            if is_condition_failure(exc):
                return Outcome.DUPLICATE
            raise
        return Outcome.STALE

    def _update(self, request: dict[str, Any]) -> None:
        write(
            self._retrier,
            "UpdateItem",
            self.table,
            lambda: self._client.update_item(**request),
            self._observe_write,
        )

    def scan(self) -> dict[str, ServiceState]:
        fields = (
            "serviceArn",
            "clusterName",
            "serviceName",
            "taskStartImpaired",
            "deploymentState",
        )
        return {
            str(item["serviceArn"]): ServiceState(
                cluster=str(item.get("clusterName") or ""),
                service=str(item.get("serviceName") or ""),
                impaired=item.get("taskStartImpaired"),
                deployment_state=item.get("deploymentState"),
            )
            for item in scan(self._client, self.table, fields)
            if not is_lease_key(item["serviceArn"])
        }


class ServiceStateCollector(Collector):
    """ecswatch_service_task_start_impaired and ecswatch_deployments_in_progress, from the table.

    A background thread rescans every `refresh_seconds`; this replica's own applied writes show
    at once. A scrape never waits on DynamoDB.
    """

    def __init__(self, store: ServiceStore, refresh_seconds: float) -> None:
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

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

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
                event.cluster, event.service, impaired, deployment
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
