"""Pure event logic: parse an SQS body, redact it, build the item, decide what counts.

Nothing here does I/O, so every rule that decides what is stored or counted is tested
without a network (tests/test_events.py) and by property tests over random streams.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ecswatch.domain import expiry
from ecswatch.domain.arns import account_region, cluster_name
from ecswatch.domain.services import Kind, ServiceEvent, parse_service_event
from ecswatch.domain.times import parse_time

TASK_STATE_CHANGE = "ECS Task State Change"
CONTAINER_INSTANCE_STATE_CHANGE = "ECS Container Instance State Change"
SERVICE_ACTION = "ECS Service Action"
DEPLOYMENT_STATE_CHANGE = "ECS Deployment State Change"
KNOWN_DETAIL_TYPES = (
    TASK_STATE_CHANGE,
    CONTAINER_INSTANCE_STATE_CHANGE,
    SERVICE_ACTION,
    DEPLOYMENT_STATE_CHANGE,
)
#: metric label for anything else, so hostile input cannot blow up label cardinality
OTHER_DETAIL_TYPE = "other"
REDACTED = "***"
#: container instance statuses it never leaves: deregistered, or never registered
GONE_INSTANCE_STATUSES = frozenset({"INACTIVE", "REGISTRATION_FAILED"})
#: the `Type` of the JSON SNS delivers to SQS when raw message delivery is off
SNS_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# DynamoDB numbers hold 38 significant digits; larger versions cannot be compared there.
MAX_VERSION = 10**38 - 1


class Resource(enum.Enum):
    """What a stored event describes, with the attribute its table is keyed on."""

    TASK = "taskArn"
    CONTAINER_INSTANCE = "containerInstanceArn"

    @property
    def key(self) -> str:
        return self.value


SERVICE_KIND_BY_DETAIL_TYPE = {
    SERVICE_ACTION: Kind.ACTION,
    DEPLOYMENT_STATE_CHANGE: Kind.DEPLOYMENT,
}
RESOURCE_BY_DETAIL_TYPE = {
    TASK_STATE_CHANGE: Resource.TASK,
    CONTAINER_INSTANCE_STATE_CHANGE: Resource.CONTAINER_INSTANCE,
}


@dataclass(frozen=True, slots=True)
class Event:
    """A state change to store: one conditional write keyed on `arn`, guarded by `version`."""

    resource: Resource
    detail_type: str
    arn: str
    version: int
    event_id: str
    event_time: str
    detail: Mapping[str, Any]
    account: str = ""  # metric labels: from the ARN, else the envelope (domain.arns)
    region: str = ""


@dataclass(frozen=True, slots=True)
class Ignored:
    """A well-formed aws.ecs event that ecswatch does not store (yet)."""

    detail_type: str


@dataclass(frozen=True, slots=True)
class Invalid:
    """A body that can never be stored; `reason` is a short code, `message` says why."""

    reason: str
    message: str
    detail_type: str = OTHER_DETAIL_TYPE


Parsed = Event | ServiceEvent | Ignored | Invalid


def detail_type_label(detail_type: object) -> str:
    return (
        detail_type
        if isinstance(detail_type, str) and detail_type in KNOWN_DETAIL_TYPES
        else OTHER_DETAIL_TYPE
    )


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number DynamoDB can store")


def _load(text: str) -> Any:
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def is_sns_envelope(body: Any) -> bool:
    """An SNS notification as SNS delivers it to SQS without raw message delivery."""
    return (
        isinstance(body, dict)
        and body.get("Type") in SNS_TYPES
        and "detail-type" not in body
        and "source" not in body
    )


def _unwrap_sns(envelope: dict[str, Any]) -> Any:
    """The EventBridge envelope inside an SNS notification, or the Invalid saying it is not one."""
    message = envelope.get("Message")
    if envelope.get("Type") != "Notification" or not isinstance(message, str):
        return Invalid("sns_not_ecs", f"SNS {str(envelope.get('Type'))[:40]} without an event")
    try:
        inner = _load(message)
    except (ValueError, RecursionError):
        return Invalid("sns_not_ecs", "SNS notification whose Message is not JSON")
    if not isinstance(inner, dict) or inner.get("source") != "aws.ecs":
        return Invalid("sns_not_ecs", "SNS notification whose Message is not an aws.ecs event")
    return inner


def parse_message(body: str, *, redact: bool = True) -> Parsed:  # noqa: PLR0911
    """Classify one SQS body (raw, or wrapped by SNS); numbers become int/Decimal, never float."""
    try:
        envelope = _load(body)
    except (ValueError, RecursionError) as exc:
        return Invalid("not_json", f"body is not JSON: {str(exc)[:200]}")
    if is_sns_envelope(envelope):
        envelope = _unwrap_sns(envelope)
        if isinstance(envelope, Invalid):
            return envelope
    if not isinstance(envelope, dict):
        return Invalid("not_envelope", "body is not a JSON object")
    detail_type = envelope.get("detail-type")
    detail = envelope.get("detail")
    label = detail_type_label(detail_type)
    if envelope.get("source") != "aws.ecs":
        return Invalid("not_ecs", "source is not aws.ecs", label)
    if not isinstance(detail_type, str) or not isinstance(detail, dict):
        return Invalid("not_envelope", "detail-type must be a string and detail an object", label)
    service_kind = SERVICE_KIND_BY_DETAIL_TYPE.get(detail_type)
    if service_kind is not None:
        parsed = parse_service_event(service_kind, envelope, detail)
        return Invalid("bad_service_event", parsed, label) if isinstance(parsed, str) else parsed
    resource = RESOURCE_BY_DETAIL_TYPE.get(detail_type)
    if resource is None:
        return Ignored(label)
    arn = detail.get(resource.key)
    if not isinstance(arn, str) or not arn:
        return Invalid("missing_arn", f"detail.{resource.key} must be a non-empty string", label)
    version = detail.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version <= MAX_VERSION:
        return Invalid("bad_version", "detail.version must be a non-negative integer", label)
    if redact:
        redact_environment(detail)
    account, region = account_region(arn, envelope)
    return Event(
        resource=resource,
        detail_type=detail_type,
        arn=arn,
        version=version,
        event_id=str(envelope.get("id", "")),
        event_time=str(envelope.get("time", "")),
        detail=detail,
        account=account,
        region=region,
    )


def redact_environment(detail: dict[str, Any]) -> None:
    """Replace overrides.containerOverrides[].environment[].value with ***, in place."""
    overrides = detail.get("overrides")
    containers = overrides.get("containerOverrides") if isinstance(overrides, dict) else None
    for container in containers if isinstance(containers, list) else ():
        env = container.get("environment") if isinstance(container, dict) else None
        for pair in env if isinstance(env, list) else ():
            if isinstance(pair, dict) and "value" in pair:
                pair["value"] = REDACTED


def build_item(event: Event, *, now: datetime, stopped_task_ttl_days: int) -> dict[str, Any]:
    """The item to store: every detail field, plus eventId/eventTime/writtenAt/expiresAt."""
    item = dict(event.detail)
    item["version"] = event.version
    item["eventId"] = event.event_id
    item["eventTime"] = event.event_time
    item["writtenAt"] = now.astimezone(UTC).isoformat(timespec="milliseconds")
    if is_gone(event):  # (the time is parsed only for the items that expire)
        expires_at = expiry.expires_after_window(now, event.event_time, stopped_task_ttl_days)
        if expires_at is not None:
            item["expiresAt"] = expires_at
    return item


def detail_type_of(event: Event | ServiceEvent) -> str:
    if isinstance(event, Event):
        return event.detail_type
    return SERVICE_ACTION if event.kind is Kind.ACTION else DEPLOYMENT_STATE_CHANGE


def is_expired(event: Event | ServiceEvent, now: datetime, ttl_days: int) -> bool:
    """Older than the TTL window (`ttl_days` after its own time): not to be applied (rule 1 of
    domain.expiry, where the argument is)."""
    return expiry.is_expired(
        event.event_time if isinstance(event, Event) else event.at, now, ttl_days
    )


def is_gone(event: Event) -> bool:
    """A resource that never changes again: a STOPPED task, a deregistered (INACTIVE) or failed
    container instance. Its item expires; a later, higher version (if any) replaces the whole
    item, expiry included."""
    if event.resource is Resource.TASK:
        return event.detail.get("lastStatus") == "STOPPED"
    return event.detail.get("status") in GONE_INSTANCE_STATUSES


@dataclass(frozen=True, slots=True)
class FailedStart:
    """Labels of a task that went straight from PENDING to STOPPED."""

    account: str
    region: str
    cluster: str
    group: str
    stop_code: str


def may_be_failed_start(event: Event) -> bool:
    """A STOPPED task that never started: only for these does the replaced item matter."""
    detail = event.detail
    return (
        event.resource is Resource.TASK
        and detail.get("lastStatus") == "STOPPED"
        and not detail.get("startedAt")
    )


def failed_start(event: Event, replaced_status: str | None) -> FailedStart | None:
    """The PENDING→STOPPED rule, from the applied event and the lastStatus of the item it replaced.

    Counted once: only an *applied* write can count, the conditional write lets exactly one
    writer apply each version, and a later STOPPED version finds the item already STOPPED.
    """
    detail = event.detail
    if not may_be_failed_start(event) or replaced_status == "STOPPED":
        return None
    return FailedStart(
        account=event.account,
        region=event.region,
        cluster=cluster_name(detail.get("clusterArn")),
        group=str(detail.get("group") or ""),
        stop_code=str(detail.get("stopCode") or ""),
    )


def event_lag_seconds(event_time: str, now: datetime) -> float | None:
    """now minus the envelope's `time`, or None when it is absent or unreadable."""
    then = parse_time(event_time)
    return None if then is None else max(0.0, (now - then).total_seconds())
