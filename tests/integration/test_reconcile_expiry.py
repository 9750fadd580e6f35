"""What reconciliation marks gone expires by the events' own rules (domain.expiry), on moto."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry

from ecswatch.commands.reconcile import reconcile
from ecswatch.commands.report import build_report
from ecswatch.config import override
from ecswatch.daemon.reconcile.metrics import ReconcileMetrics
from ecswatch.daemon.reconcile.reconciler import Reconciler
from ecswatch.daemon.state.service_reads import ServiceReader
from ecswatch.daemon.state.service_state import ServiceStore
from ecswatch.daemon.state.store import Outcome
from ecswatch.dev.simulate import Service, service_event
from ecswatch.domain.events import parse_message
from ecswatch.domain.services import ServiceEvent, ServiceState
from tests.conftest import Stack
from tests.integration.test_reconcile import ACCOUNT, OWN_PROD, ecs_client, ecs_with_tasks
from tests.integration.test_reconciler import FAST
from tests.integration.test_service_health import service_store

REGION = "us-east-1"
DAY = 86400


def exported(reader: ServiceReader) -> dict[str, ServiceState]:
    """What the gauges would show now: gone services left out (domain.expiry)."""
    now = time.time()
    states = {arn: state.exported(now, 3600.0) for arn, state in reader.scan().items()}
    return {arn: state for arn, state in states.items() if state is not None}


def reconciler(stack: Stack, owner: str = "a", **settings: float) -> Reconciler:
    """A daemon's reconciler on the test's clients, its passes run by the test (no thread)."""
    config = override(stack.config, reconcile={**FAST, **settings})
    return Reconciler(
        config,
        ecs=ecs_client(stack),
        dynamodb=stack.dynamodb,
        metrics=ReconcileMetrics(CollectorRegistry(), interval_seconds=1.0),
        count_task=lambda event, before: None,
        owner=owner,
    )


def impairment(name: str, at: datetime, event_name: str = "SERVICE_TASK_START_IMPAIRED") -> Any:
    parsed = parse_message(
        json.dumps(service_event(Service("prod", name, "img"), "action", event_name, at))
    )
    assert isinstance(parsed, ServiceEvent)
    return parsed


def service_item(stack: Stack, name: str) -> dict[str, Any]:
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/{name}"
    raw = stack.dynamodb.get_item(
        TableName=stack.config.dynamodb.service_table, Key={"serviceArn": {"S": arn}}
    )["Item"]
    return {k: next(iter(v.values())) for k, v in raw.items()}


def impaired_in_report(stack: Stack) -> list[str]:
    report = build_report(stack.dynamodb, stack.config, hours=24, now=datetime.now(UTC))
    return [s.group for s in report.services if s.task_start_impaired]


def test_a_container_instance_marked_inactive_expires_and_leaves_the_report(stack: Stack) -> None:
    """The reconciler's INACTIVE mark expires as the INACTIVE event would (after the window,
    counted from the stored event's time), so `report` stops listing it as unhealthy."""
    ecs_with_tasks(stack, 0)
    gone = f"arn:aws:ecs:{REGION}:{ACCOUNT}:container-instance/prod/terminated-under-its-tasks"
    skewed = datetime.now(UTC) + timedelta(days=1)  # a stored event stamped in the future
    stack.dynamodb.put_item(
        TableName=stack.config.dynamodb.container_instance_table,
        Item={"containerInstanceArn": {"S": gone}, "clusterArn": {"S": OWN_PROD},
              "status": {"S": "ACTIVE"}, "agentConnected": {"BOOL": False},
              "version": {"N": "12"}, "eventTime": {"S": skewed.isoformat()}},
    )  # fmt: skip
    report = build_report(stack.dynamodb, stack.config, hours=24, now=datetime.now(UTC))
    assert [i["containerInstanceArn"] for i in report.unhealthy_instances] == [gone]

    reconcile(ecs_client(stack), stack.dynamodb, stack.config, ["prod"], apply=True)
    item = stack.items(stack.config.dynamodb.container_instance_table)[gone]
    assert item["status"] == "INACTIVE"
    assert item["expiresAt"] == int(skewed.timestamp()) + 7 * DAY
    report = build_report(stack.dynamodb, stack.config, hours=24, now=datetime.now(UTC))
    assert report.unhealthy_instances == []


def test_a_late_event_does_not_bring_a_deleted_service_back(stack: Stack) -> None:
    """Deleted, found gone by a pass, then a late IMPAIRED event: refused, so no critical
    impairment for 30 days of a service that no longer exists; a re-created one comes back."""
    ecs, _ = ecs_with_tasks(stack, 0)
    ecs.create_service(cluster="prod", serviceName="batch", taskDefinition="web", desiredCount=1)
    store: ServiceStore = service_store(stack)
    reader = ServiceReader(stack.dynamodb, stack.config.dynamodb.service_table)
    before = datetime.now(UTC) - timedelta(minutes=5)
    assert store.apply(impairment("batch", before)) is Outcome.APPLIED
    passes = reconciler(stack)
    assert passes.run_pass() == "success"
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:service/prod/batch"
    assert exported(reader)[arn].impaired is True
    assert impaired_in_report(stack) == ["service:batch"]

    ecs.delete_service(cluster="prod", service="batch", force=True)
    assert passes.run_pass() == "success"
    assert arn not in exported(reader)
    assert impaired_in_report(stack) == []

    # The event a brownout held back: stamped before the deletion, delivered after it.
    late = store.apply(impairment("batch", before + timedelta(seconds=30)))
    assert late is not Outcome.APPLIED
    assert arn not in exported(reader)
    assert impaired_in_report(stack) == []
    item = service_item(stack, "batch")
    now = datetime.now(UTC).timestamp()
    # Kept while its events' window is open (so a late one finds it), not idle_ttl_days.
    assert now + 7 * DAY - 60 <= float(item["expiresAt"]) <= now + 7 * DAY + 60

    # Re-created under the same name: its new events apply, and the next pass shows it.
    ecs.create_service(cluster="prod", serviceName="batch", taskDefinition="web", desiredCount=2)
    recovered = impairment(
        "batch", datetime.now(UTC) + timedelta(seconds=1), "SERVICE_STEADY_STATE"
    )
    assert store.apply(recovered) is Outcome.APPLIED
    assert passes.run_pass() == "success"
    state = exported(reader)[arn]
    assert state.impaired is False
    assert state.counts is not None and state.counts.desired == 2
