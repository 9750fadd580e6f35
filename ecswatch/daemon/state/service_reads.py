"""Reading the service table back for the gauges: every service's stored state.

Replicas see different parts of the stream, so each replica's gauges come from the table (and
its own writes in between): all replicas export the same, stored, state.
"""

from __future__ import annotations

from typing import Any

from ecswatch.daemon.state.dynamo import scan
from ecswatch.domain.expiry import GONE_AT
from ecswatch.domain.services import COUNT_FIELDS, ServiceState, counts_of, is_service_key
from ecswatch.domain.times import parse_time

FIELDS = (
    "serviceArn",
    "clusterName",
    "serviceName",
    "taskStartImpaired",
    "deploymentState",
    "expiresAt",
    GONE_AT,
    "impairmentKey",
    "lastDeploymentKey",
    "countsAt",
    *COUNT_FIELDS,
)


class ServiceReader:
    """The stored state of every service in the table, by service ARN: gone ones too (expired,
    or found gone by reconciliation; TTL deletes late), for the gauges must know what is gone."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self.table = table

    def scan(self) -> dict[str, ServiceState]:
        states = {}
        for item in scan(self._client, self.table, FIELDS):
            if not is_service_key(item["serviceArn"]):
                continue  # the reconciler's lease, not a service
            counted = parse_time(item.get("countsAt"))
            states[str(item["serviceArn"])] = ServiceState(
                cluster=str(item.get("clusterName") or ""),
                service=str(item.get("serviceName") or ""),
                impaired=item.get("taskStartImpaired"),
                deployment_state=item.get("deploymentState"),
                counts=counts_of(item),
                impairment_key=str(item.get("impairmentKey") or ""),
                deployment_key=str(item.get("lastDeploymentKey") or ""),
                counts_at=counted.timestamp() if counted else None,
                expires_at=_number(item.get("expiresAt")),
                gone_at=str(item.get(GONE_AT) or ""),
            )
        return states


def _number(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
