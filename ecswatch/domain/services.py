"""Pure service-health rules: ECS Service Action and Deployment State Change events.

These events carry no `detail.version`; the service ARN is only in `resources[0]`. They are
ordered by their own time (`detail.updatedAt`/`createdAt`, else the envelope `time`) with the
event id as tie-break, as one sortable string, and de-duplicated by event id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, TypeGuard

from ecswatch.domain.arns import account_region, cluster_name
from ecswatch.domain.times import normalize_time

IMPAIRED = "SERVICE_TASK_START_IMPAIRED"
STEADY = "SERVICE_STEADY_STATE"
DEPLOYMENT_PREFIX = "SERVICE_DEPLOYMENT_"
IN_PROGRESS = "IN_PROGRESS"
#: the task counts the reconciler stores on a service's item (from DescribeServices)
COUNT_FIELDS = ("desiredTasks", "runningTasks", "pendingTasks")


@dataclass(frozen=True, slots=True)
class TaskCounts:
    desired: int
    running: int
    pending: int


def counts_of(item: dict[str, Any]) -> TaskCounts | None:
    """The counts on a scanned service item (numbers come as strings), None when absent."""
    try:
        return TaskCounts(*(int(item[name]) for name in COUNT_FIELDS))
    except (KeyError, TypeError, ValueError):
        return None


def is_service_key(key: object) -> TypeGuard[str]:
    """Service items are keyed by service ARN (as parse_service_event requires it); anything
    else in the table (the reconciler's lease) is not a service."""
    return isinstance(key, str) and ":service/" in key


@dataclass(frozen=True, slots=True)
class ServiceState:
    """What the gauges export of one service, as stored."""

    cluster: str
    service: str
    impaired: bool | None
    deployment_state: str | None
    counts: TaskCounts | None = None  # from the ECS API, written by the reconciler


class Kind(enum.Enum):
    ACTION = "action"
    DEPLOYMENT = "deployment"


@dataclass(frozen=True, slots=True)
class ServiceEvent:
    kind: Kind
    service_arn: str
    cluster: str
    service: str
    event_id: str
    event_name: str
    event_type: str
    at: str  # UTC ISO 8601 with milliseconds: sorts like time
    reason: str
    deployment_id: str
    account: str = ""  # metric labels: from the ARN, else the envelope (domain.arns)
    region: str = ""

    @property
    def sort_key(self) -> str:
        """Later events sort higher; the event id breaks ties between equal times."""
        return f"{self.at}#{self.event_id}"

    @property
    def register(self) -> str:
        """Which part of the service's state this event competes for, each ordered on its own:
        impairment (IMPAIRED/STEADY), deployment, or the last other action (ERROR ones...).
        One order per part keeps every part order-independent: a late STEADY_STATE must not
        lose to a newer, unrelated placement failure."""
        if self.kind is Kind.DEPLOYMENT:
            return "deployment"
        return "impairment" if self.impaired is not None else "action"

    @property
    def deployment_state(self) -> str:
        return self.event_name.removeprefix(DEPLOYMENT_PREFIX)

    @property
    def impaired(self) -> bool | None:
        """What this event says of task-start impairment; None: it says nothing."""
        return {IMPAIRED: True, STEADY: False}.get(self.event_name)


def parse_service_event(
    kind: Kind, envelope: dict[str, Any], detail: dict[str, Any]
) -> ServiceEvent | str:
    """The event, or why it is invalid."""
    resources = envelope.get("resources")
    arn = resources[0] if isinstance(resources, list) and resources else None
    if not is_service_key(arn):
        return "resources[0] must be the service ARN"
    event_id = envelope.get("id")
    if not isinstance(event_id, str) or not event_id:
        return "id must be a non-empty string (it de-duplicates service events)"
    at = normalize_time(detail.get("updatedAt") or detail.get("createdAt") or envelope.get("time"))
    if at is None:
        return "no readable time (detail.updatedAt, detail.createdAt or time)"
    event_name = detail.get("eventName")
    if not isinstance(event_name, str) or not event_name:
        return "detail.eventName must be a non-empty string"
    cluster_arn = detail.get("clusterArn")
    path = arn.split(":service/", 1)[1].split("/")
    cluster = cluster_name(cluster_arn)
    if not cluster and len(path) > 1:
        cluster = path[0]
    account, region = account_region(arn, envelope)
    return ServiceEvent(
        kind=kind,
        service_arn=arn,
        cluster=cluster,
        service=path[-1],
        event_id=event_id,
        event_name=event_name,
        event_type=str(detail.get("eventType") or ""),
        at=at,
        reason=str(detail.get("reason") or "")[:1000],
        deployment_id=str(detail.get("deploymentId") or ""),
        account=account,
        region=region,
    )
