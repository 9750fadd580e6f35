"""Service events (no version): parsed, ordered by their own time, identified by event id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from ecswatch.dev.simulate import DEFAULT_SERVICES, service_event
from ecswatch.domain.events import Invalid, parse_message
from ecswatch.domain.services import Kind, ServiceEvent
from ecswatch.domain.times import normalize_time

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WEB = DEFAULT_SERVICES[0]


def parsed(envelope: dict[str, Any]) -> ServiceEvent:
    result = parse_message(json.dumps(envelope))
    assert isinstance(result, ServiceEvent), result
    return result


def test_service_action_is_keyed_on_the_service_arn_from_resources() -> None:
    event = parsed(service_event(WEB, "action", "SERVICE_TASK_START_IMPAIRED", T0))
    assert event.kind is Kind.ACTION
    assert event.service_arn == "arn:aws:ecs:us-east-1:123456789012:service/prod/web"
    assert (event.cluster, event.service) == ("prod", "web")
    assert event.impaired is True
    assert event.at == "2026-11-23T12:00:00.000Z"


def test_deployment_state_comes_from_the_event_name() -> None:
    event = parsed(service_event(WEB, "deployment", "SERVICE_DEPLOYMENT_FAILED", T0))
    assert event.kind is Kind.DEPLOYMENT
    assert event.deployment_state == "FAILED"
    assert event.deployment_id.startswith("ecs-svc/")
    assert event.impaired is None


def test_steady_state_clears_impairment_and_other_names_say_nothing() -> None:
    assert parsed(service_event(WEB, "action", "SERVICE_STEADY_STATE", T0)).impaired is False
    placement = parsed(service_event(WEB, "action", "SERVICE_TASK_PLACEMENT_FAILURE", T0))
    assert placement.impaired is None


def test_sort_key_orders_by_time_then_event_id() -> None:
    early = parsed(service_event(WEB, "action", "SERVICE_STEADY_STATE", T0))
    late = parsed(
        service_event(WEB, "action", "SERVICE_STEADY_STATE", T0 + timedelta(milliseconds=1))
    )
    assert early.sort_key < late.sort_key
    tie = dict(service_event(WEB, "action", "SERVICE_STEADY_STATE", T0), id="zzzz")
    assert early.sort_key < parsed(tie).sort_key


def test_times_in_any_iso_form_normalize_to_sortable_utc() -> None:
    assert normalize_time("2026-11-23T13:00:00+01:00") == "2026-11-23T12:00:00.000Z"
    assert normalize_time("2026-11-23T12:00:00.5Z") == "2026-11-23T12:00:00.500Z"
    assert normalize_time("2026-11-23T12:00:00") == "2026-11-23T12:00:00.000Z"
    assert normalize_time("noon") is None
    assert normalize_time(None) is None


def test_service_events_without_arn_id_or_time_are_invalid() -> None:
    good = service_event(WEB, "action", "SERVICE_STEADY_STATE", T0)
    broken = [
        dict(good, resources=[]),
        dict(good, resources=["arn:aws:ecs:us-east-1:1:cluster/prod"]),
        dict(good, id=""),
        dict(good, time="never", detail=dict(good["detail"], createdAt=None)),
        dict(good, detail=dict(good["detail"], eventName=None)),
    ]
    for envelope in broken:
        result = parse_message(json.dumps(envelope))
        assert isinstance(result, Invalid)
        assert result.reason == "bad_service_event"
        assert result.detail_type == "ECS Service Action"
