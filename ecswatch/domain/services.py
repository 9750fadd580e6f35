"""Pure service-health rules: ECS Service Action and Deployment State Change events.

These events carry no `detail.version`; the service ARN is only in `resources[0]`. They are
ordered by their own time (`detail.updatedAt`/`createdAt`, else the envelope `time`) with the
event id as tie-break, as one sortable string, and de-duplicated by event id.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, TypeGuard

from ecswatch.domain.arns import account_region, cluster_name
from ecswatch.domain.expiry import service_gone
from ecswatch.domain.times import normalize_time

IMPAIRED = "SERVICE_TASK_START_IMPAIRED"
STEADY = "SERVICE_STEADY_STATE"
DEPLOYMENT_PREFIX = "SERVICE_DEPLOYMENT_"
IN_PROGRESS = "IN_PROGRESS"
#: the reason of the IN_PROGRESS event that starts the circuit breaker's rollback deployment
#: (AWS's "service deployment state change events" page): "ECS deployment circuit breaker:
#: rolling back to deploymentId ecs-svc/1234567890123456789."
ROLLBACK_REASON = "ECS deployment circuit breaker: rolling back"
#: label `outcome` of ecswatch_deployment_outcomes_total
DEPLOYMENT_OUTCOMES = ("completed", "failed", "rolled_back")
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
    """What the gauges export of one service, as stored; each part with the sort key of the
    event that set it (so a copy seen twice, or late, never wins over a newer one)."""

    cluster: str
    service: str
    impaired: bool | None
    deployment_state: str | None
    counts: TaskCounts | None = None  # from the ECS API, written by the reconciler
    impairment_key: str = ""
    deployment_key: str = ""
    counts_at: float | None = None  # epoch seconds the counts were written
    expires_at: float | None = None  # epoch seconds; None: no expiry known
    gone_at: str = ""  # set when reconciliation found the service deleted (domain.expiry)

    def exported(self, now: float, counts_max_age: float) -> ServiceState | None:
        """This state as the gauges show it at `now`: None once gone (domain.expiry), counts
        dropped once older than `counts_max_age` (frozen numbers must not be judged current)."""
        if service_gone(self.expires_at, self.gone_at, datetime.fromtimestamp(now, UTC)):
            return None
        if self.counts is not None and (
            self.counts_at is None or now - self.counts_at > counts_max_age
        ):
            return replace(self, counts=None)
        return self


@dataclass(frozen=True, slots=True)
class GaugeChange:
    """One applied service event, as far as the gauges care: the part (`impairment` or
    `deployment`) it set, its sort key and value. Replicas exchange these (the journal)."""

    service_arn: str
    cluster: str
    service: str
    register: str
    key: str
    value: str  # "1"/"0" for impairment, the deployment state otherwise


def change_of(event: ServiceEvent) -> GaugeChange | None:
    """The gauge change an applied event makes; None for parts no gauge shows."""
    if event.register == "impairment":
        value = "1" if event.impaired else "0"
    elif event.register == "deployment":
        value = event.deployment_state
    else:
        return None
    return GaugeChange(
        event.service_arn, event.cluster, event.service, event.register, event.sort_key, value
    )


def merged(state: ServiceState | None, change: GaugeChange) -> ServiceState:
    """`state` with `change` applied if it is newer than what set that part."""
    if state is None:
        state = ServiceState(change.cluster, change.service, None, None)
    if change.register == "impairment" and change.key > state.impairment_key:
        return replace(state, impaired=change.value == "1", impairment_key=change.key)
    if change.register == "deployment" and change.key > state.deployment_key:
        return replace(state, deployment_state=change.value, deployment_key=change.key)
    return state


def newest(scanned: ServiceState, known: ServiceState) -> ServiceState:
    """A rescanned state, keeping any part `known` holds from a newer event (a scan page
    read before that event's write landed)."""
    state = scanned
    if known.impairment_key > state.impairment_key:
        state = replace(state, impaired=known.impaired, impairment_key=known.impairment_key)
    if known.deployment_key > state.deployment_key:
        state = replace(
            state, deployment_state=known.deployment_state, deployment_key=known.deployment_key
        )
    return state


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
    def deployment_outcome(self) -> str | None:
        """completed, failed, rolled_back (the circuit breaker started rolling back), or None.

        A rollback is its own deployment: FAILED for the broken one, then IN_PROGRESS with the
        rollback reason, then COMPLETED once the old version is steady again. `rolled_back`
        counts the rollback itself, so it shows even when the service is steady once more.
        """
        if self.kind is not Kind.DEPLOYMENT:
            return None
        state = self.deployment_state
        if state == IN_PROGRESS:
            return "rolled_back" if self.reason.startswith(ROLLBACK_REASON) else None
        return {"COMPLETED": "completed", "FAILED": "failed"}.get(state)

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
