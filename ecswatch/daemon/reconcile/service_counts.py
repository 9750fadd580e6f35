"""Services' desired/running/pending task counts from DescribeServices, stored on each service's
ECSServiceState item (every replica exports them: daemon/expose/service_gauges.py).

A service with no tasks emits no task events, so its counts come from the API: each pass writes
them (one UpdateItem per service: a snapshot), creating the item for a service that never sent
an event, and pushing its idle expiry (`dynamodb.idle_service_ttl_days`) ahead: a service ECS
reports ACTIVE is not gone. `countsAt` is when DescribeServices returned the counts (UTC,
`YYYY-MM-DDTHH:MM:SS.mmmZ`): readers judge the counts' age by it. The collector rescans the
table, so every replica exports the same numbers: alert with `max by (...)`. Counts of a
service ECS no longer lists as ACTIVE are removed and it is gone at once, for good
(domain.expiry, rule 4), so neither its counts nor its impairment gauge alert any more, even
when a late event for it turns up.
Fencing: these writes carry no version, so each is conditional on the lease's fencing token
(`countsToken` <= ours) and on `countsAt` not going back: a replica that lost the lease while
a write was in flight can neither overwrite a newer holder's counts nor expire a service that
holder just counted; refused, it stops its pass.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from botocore.exceptions import ClientError

from ecswatch.daemon.aws.retry import Retrier
from ecswatch.daemon.reconcile.ecs import EcsApi, Stopping
from ecswatch.daemon.state.dynamo import is_condition_failure, scan, write
from ecswatch.domain import expiry
from ecswatch.domain.arns import cluster_name
from ecswatch.domain.expiry import GONE_AT, idle_expires_at
from ecswatch.domain.services import COUNT_FIELDS as FIELDS
from ecswatch.domain.times import normalize_time

DESCRIBE_SERVICES_BATCH = 10  # DescribeServices takes at most 10 services
#: the lease's fencing token (lease.py) of the pass that last wrote the counts
FENCE_FIELD = "countsToken"
FENCE = "attribute_not_exists(#fence) OR #fence <= :fence"
log = structlog.get_logger("ecswatch.daemon.reconcile.service_counts")


class ServiceCounts:
    """Writes the counts of every ACTIVE service of the given clusters."""

    def __init__(
        self,
        api: EcsApi,
        dynamodb: Any,
        table: str,
        retrier: Retrier,
        *,
        idle_ttl_days: int = 0,
        window_ttl_days: int = 0,
        checkpoint: Callable[[], None] = lambda: None,
        observe_write: Callable[[str, float], None] = lambda table, seconds: None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._api = api
        self._dynamodb = dynamodb
        self._table = table
        self._retrier = retrier
        self._idle_ttl_days = idle_ttl_days
        self._window_ttl_days = window_ttl_days  # dynamodb.stopped_task_ttl_days
        self._checkpoint = checkpoint
        self._observe_write = observe_write
        self._now = now
        self._token = 0

    def sync(self, cluster_arns: list[str], *, token: int) -> int:
        """Write the counts of each ACTIVE service under the lease's fencing `token`; returns
        how many services were written. Raises ecs.Stopping when a newer holder's token is
        already on an item (this replica lost the lease)."""
        self._token = token
        active: set[str] = set()
        for cluster in cluster_arns:
            for page in self._api.pages("ListServices", "serviceArns", cluster=cluster):
                for start in range(0, len(page), DESCRIBE_SERVICES_BATCH):
                    self._checkpoint()
                    batch = page[start : start + DESCRIBE_SERVICES_BATCH]
                    response = self._api.call("DescribeServices", cluster=cluster, services=batch)
                    read_at = self._now()
                    for service in response.get("services", []):
                        if service.get("status") == "ACTIVE" and service.get("serviceArn"):
                            self._write(service, cluster, read_at)
                            active.add(service["serviceArn"])
        self._forget(cluster_arns, active)
        return len(active)

    def _update(self, request: dict[str, Any], condition: str) -> bool:
        """One fenced UpdateItem: `condition` and no newer holder's token; False if refused."""
        request = {
            **request,
            "ConditionExpression": f"({condition}) AND ({FENCE})",
            "ExpressionAttributeNames": {"#fence": FENCE_FIELD},
            "ExpressionAttributeValues": {
                **request["ExpressionAttributeValues"], ":fence": {"N": str(self._token)}
            },
            "UpdateExpression": request["UpdateExpression"] + ", #fence = :fence",
        }  # fmt: skip
        try:
            write(self._retrier, "UpdateItem", self._table,
                  lambda: self._dynamodb.update_item(TableName=self._table, **request),
                  self._observe_write)  # fmt: skip
        except ClientError as exc:
            if not is_condition_failure(exc):
                raise
            return False
        return True

    def _write(self, service: dict[str, Any], cluster: str, read_at: datetime) -> None:
        numbers = (service.get("desiredCount"), service.get("runningCount"),
                   service.get("pendingCount"))  # fmt: skip
        values: dict[str, Any] = {
            f":{name}": {"N": str(int(value or 0))}
            for name, value in zip(FIELDS, numbers, strict=True)
        }
        now = self._now()
        values[":at"] = {"S": normalize_time(read_at.isoformat()) or ""}
        values[":cluster"] = {"S": cluster_name(cluster)}
        values[":service"] = {"S": str(service.get("serviceName", ""))}
        sets = [f"{name} = :{name}" for name in FIELDS]
        sets += ["countsAt = :at", "clusterName = if_not_exists(clusterName, :cluster)",
                 "serviceName = if_not_exists(serviceName, :service)"]  # fmt: skip
        expires_at = idle_expires_at(now, self._idle_ttl_days)
        if expires_at is not None:  # ECS says it is alive: keep it from expiring as idle
            sets.append("expiresAt = :expires")
            values[":expires"] = {"N": str(expires_at)}
        # ACTIVE again (re-created under its name): no longer gone (domain.expiry, 4).
        fresh = self._update({
            "Key": {"serviceArn": {"S": service["serviceArn"]}},
            "UpdateExpression": f"REMOVE {GONE_AT} SET " + ", ".join(sets),
            "ExpressionAttributeValues": values,
        }, "attribute_not_exists(countsAt) OR countsAt <= :at")  # fmt: skip
        if not fresh:
            log.warning("reconcile_fenced_out", service_arn=service["serviceArn"],
                        token=self._token)  # fmt: skip
            raise Stopping

    def _forget(self, cluster_arns: list[str], active: set[str]) -> None:
        """Expire these clusters' services that are no longer ACTIVE (domain.expiry, rule 4)."""
        prefixes = tuple(
            arn.replace(":cluster/", ":service/", 1) + "/" for arn in cluster_arns
        )  # service ARNs in the long format: arn:...:service/CLUSTER/NAME
        if not prefixes:
            return
        now = self._now()
        fields = ("serviceArn", "desiredTasks", GONE_AT, "expiresAt")
        for item in scan(self._dynamodb, self._table, fields, retrier=self._retrier):
            arn = str(item["serviceArn"])
            # Only what a pass counted (ECS listed it once): a service only ever seen in events
            # may not be listed yet. Already gone: nothing to do.
            if (
                "desiredTasks" not in item
                or expiry.service_gone(item.get("expiresAt"), item.get(GONE_AT), now)
                or not arn.startswith(prefixes)
                or arn in active
            ):
                continue
            # Deleted (or draining): gone at once for every reader, its impairment included,
            # and kept (expiring) long enough to refuse its late events.
            sets, values = [f"{GONE_AT} = :gone"], {":gone": {"S": expiry.gone_since(now)}}
            expires_at = expiry.gone_service_expires_at(
                now, self._window_ttl_days, self._idle_ttl_days
            )
            if expires_at is not None:
                sets.append("expiresAt = :expires")
                values[":expires"] = {"N": str(expires_at)}
            # Refused: a newer holder counted it since we scanned (or TTL removed it).
            self._update({
                "Key": {"serviceArn": {"S": arn}},
                "UpdateExpression": "REMOVE " + ", ".join((*FIELDS, "countsAt"))
                + " SET " + ", ".join(sets),
                "ExpressionAttributeValues": values,
            }, "attribute_exists(serviceArn)")  # fmt: skip
