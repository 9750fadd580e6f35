"""Reading the service table back for the gauges: every service's stored state, as of now.

Replicas see different parts of the stream, so each replica's gauges come from the table (and
its own writes in between): all replicas export the same, stored, state.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ecswatch.daemon.state.dynamo import scan
from ecswatch.domain.expiry import GONE_AT, service_gone
from ecswatch.domain.services import COUNT_FIELDS, ServiceState, counts_of, is_service_key

FIELDS = (
    "serviceArn",
    "clusterName",
    "serviceName",
    "taskStartImpaired",
    "deploymentState",
    "expiresAt",
    GONE_AT,
    *COUNT_FIELDS,
)


class ServiceReader:
    """The stored state of every service not yet expired, by service ARN."""

    def __init__(self, client: Any, table: str, clock: Callable[[], float] = time.time) -> None:
        self._client = client
        self.table = table
        self._clock = clock

    def scan(self) -> dict[str, ServiceState]:
        now = datetime.fromtimestamp(self._clock(), UTC)
        states = {}
        for item in scan(self._client, self.table, FIELDS):
            if not is_service_key(item["serviceArn"]):
                continue  # the reconciler's lease, not a service
            if service_gone(item.get("expiresAt"), item.get(GONE_AT), now):
                continue  # gone (deleted service): TTL has not removed it yet
            states[str(item["serviceArn"])] = ServiceState(
                cluster=str(item.get("clusterName") or ""),
                service=str(item.get("serviceName") or ""),
                impaired=item.get("taskStartImpaired"),
                deployment_state=item.get("deploymentState"),
                counts=counts_of(item),
            )
        return states
