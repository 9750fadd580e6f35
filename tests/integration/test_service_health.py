"""Service health over HTTP: ECSServiceState, exact per-event-id counters, gauges from the table."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.expose.service_gauges import ServiceStateCollector
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.daemon.state.service_reads import ServiceReader
from ecswatch.daemon.state.service_state import ServiceStore
from ecswatch.daemon.state.store import Outcome
from ecswatch.dev.simulate import (
    ACCOUNT,
    DEFAULT_SERVICES,
    REGION,
    Service,
    service_arn,
    service_event,
    service_events,
)
from ecswatch.domain.events import parse_message
from ecswatch.domain.services import ServiceEvent
from tests.conftest import Running, Stack, wait_for
from tests.domain.test_properties import NoQueue

# Recent: events older than stopped_task_ttl_days (7) are refused as `expired`.
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
NAMES = ["SERVICE_STEADY_STATE", "SERVICE_TASK_START_IMPAIRED", "SERVICE_TASK_PLACEMENT_FAILURE"]
DEPLOYMENTS = ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]


def service_store(stack: Stack) -> ServiceStore:
    client = make_client("dynamodb", stack.config.aws, max_pool_connections=8)
    return ServiceStore(
        client,
        stack.config.dynamodb.service_table,
        Retrier(WRITE, abort=threading.Event()),
        event_table=stack.config.dynamodb.service_event_table,
    )


def service_reader(stack: Stack) -> ServiceReader:
    client = make_client("dynamodb", stack.config.aws, max_pool_connections=2)
    return ServiceReader(client, stack.config.dynamodb.service_table)


def event(envelope: dict[str, Any]) -> ServiceEvent:
    parsed = parse_message(json.dumps(envelope))
    assert isinstance(parsed, ServiceEvent)
    return parsed


def test_latest_event_wins_and_an_older_new_one_is_stale_but_counted(stack: Stack) -> None:
    store = service_store(stack)
    web = DEFAULT_SERVICES[0]
    late = event(
        service_event(web, "action", "SERVICE_TASK_START_IMPAIRED", T0 + timedelta(minutes=1))
    )
    early = event(service_event(web, "action", "SERVICE_STEADY_STATE", T0))
    assert store.apply(late) is Outcome.APPLIED
    assert store.apply(early) is Outcome.STALE  # new id, older: counted, state unchanged
    assert store.apply(early) is Outcome.DUPLICATE
    assert store.apply(late) is Outcome.DUPLICATE
    [state] = service_reader(stack).scan().values()
    assert (state.cluster, state.service, state.impaired) == ("prod", "web", True)


def test_deployments_and_actions_are_ordered_separately(stack: Stack) -> None:
    store = service_store(stack)
    web = DEFAULT_SERVICES[0]
    store.apply(
        event(service_event(web, "action", "SERVICE_STEADY_STATE", T0 + timedelta(hours=1)))
    )
    # An older deployment event is not stale against a newer *action*.
    assert (
        store.apply(event(service_event(web, "deployment", DEPLOYMENTS[0], T0))) is Outcome.APPLIED
    )
    [state] = service_reader(stack).scan().values()
    assert (state.impaired, state.deployment_state) == (False, "IN_PROGRESS")


@st.composite
def service_streams(draw: st.DrawFn) -> tuple[list[dict[str, Any]], Counter[tuple[str, str]]]:
    services = [Service("prop", f"svc{i}", "img") for i in range(draw(st.integers(1, 3)))]
    distinct = []
    for service in services:
        for i in range(draw(st.integers(1, 5))):
            when = T0 + timedelta(seconds=draw(st.integers(0, 600)), milliseconds=i)
            kind = draw(st.sampled_from(["action", "deployment"]))
            name = draw(st.sampled_from(NAMES if kind == "action" else DEPLOYMENTS))
            distinct.append(service_event(service, kind, name, when))
    counts = Counter((e["resources"][0], e["detail"]["eventName"]) for e in distinct)
    extra = draw(st.lists(st.sampled_from(distinct), max_size=len(distinct)))
    return draw(st.permutations(distinct + extra)), counts


def expected_state(deliveries: list[dict[str, Any]]) -> dict[str, tuple[bool | None, str | None]]:
    """Per service: impairment from its latest IMPAIRED/STEADY event, deployment state from its
    latest deployment event, whatever order they were delivered in."""
    latest: dict[tuple[str, str], ServiceEvent] = {}
    for envelope in deliveries:
        e = event(envelope)
        key = (e.service_arn, e.register)
        if key not in latest or latest[key].sort_key < e.sort_key:
            latest[key] = e
    result: dict[str, tuple[bool | None, str | None]] = {}
    for arn in {arn for arn, _ in latest}:
        impairment = latest.get((arn, "impairment"))
        deployment = latest.get((arn, "deployment"))
        result[arn] = (
            impairment.impaired if impairment else None,
            deployment.deployment_state if deployment else None,
        )
    return result


def counted(registry: CollectorRegistry) -> Counter[tuple[str, str]]:
    found: Counter[tuple[str, str]] = Counter()
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name in ("ecswatch_service_events_total", "ecswatch_deployments_total"):
                labels = sample.labels
                arn = service_arn(labels["cluster"], labels["service"])
                name = labels.get("event_name") or f"SERVICE_DEPLOYMENT_{labels['state']}"
                found[(arn, name)] += int(sample.value)
    return found


@pytest.mark.slow
@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(stream=service_streams())
def test_any_order_and_duplication_counts_each_event_once_and_keeps_the_latest_state(
    stack: Stack, stream: tuple[list[dict[str, Any]], Counter[tuple[str, str]]]
) -> None:
    deliveries, distinct_counts = stream
    for table, key in (
        (stack.config.dynamodb.service_table, "serviceArn"),
        (stack.config.dynamodb.service_event_table, "eventKey"),
    ):
        stack.dynamodb.delete_table(TableName=table)
        stack.dynamodb.create_table(
            TableName=table,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    store, registry = service_store(stack), CollectorRegistry()
    collector = ServiceStateCollector(service_reader(stack), refresh_seconds=0)
    processor = Processor(
        None,  # type: ignore[arg-type]  (no task events here)
        NoQueue(),  # type: ignore[arg-type]
        Metrics(registry),
        services=store,
        service_state=collector,
    )
    messages = [Message(f"m{i}", f"r{i}", json.dumps(e)) for i, e in enumerate(deliveries)]
    # One writer: moto's conditional UpdateItem is not atomic under concurrent requests to one
    # item (measured: 2 of 40 shuffled runs with 4 threads lost an update), unlike DynamoDB,
    # whose per-item atomicity the design relies on. Order and duplication are still arbitrary.
    with ThreadPoolExecutor(max_workers=1) as pool:
        assert all(pool.map(processor.handle, messages))
    assert counted(registry) == distinct_counts
    states = service_reader(stack).scan()
    stored = {arn: (s.impaired, s.deployment_state) for arn, s in states.items()}
    assert stored == expected_state(deliveries)


ORIGIN = {"account": ACCOUNT, "region": REGION}  # of every simulated ARN


def gauge(running: Running, name: str, service: str) -> float | None:
    labels = {**ORIGIN, "cluster": "prod", "service": service}
    return running.registry.get_sample_value(name, labels)


def test_daemon_exports_impairment_and_deployments_from_the_stored_state(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    envelopes = service_events(DEFAULT_SERVICES, T0)
    random.Random(3).shuffle(envelopes)
    # One worker, for moto's sake (see above); replicas on AWS are safe.
    running = start_daemon(metrics={"service_state_refresh_seconds": 0.5}, workers={"count": 1})
    stack.send_events(envelopes + envelopes[:4])  # some delivered twice
    wait_for(lambda: running.processed() >= len(envelopes) + 4 and stack.queue_counts() == (0, 0))
    assert gauge(running, "ecswatch_service_task_start_impaired", "billing") == 1.0
    assert gauge(running, "ecswatch_service_task_start_impaired", "web") == 0.0
    assert gauge(running, "ecswatch_deployments_in_progress", "billing") == 1.0
    assert gauge(running, "ecswatch_deployments_in_progress", "api") == 0.0
    labels = {**ORIGIN, "cluster": "prod", "service": "billing",
              "event_name": "SERVICE_TASK_START_IMPAIRED"}  # fmt: skip
    assert running.registry.get_sample_value("ecswatch_service_events_total", labels) == 1.0
    labels = {**ORIGIN, "cluster": "prod", "service": "web", "state": "COMPLETED"}
    assert running.registry.get_sample_value("ecswatch_deployments_total", labels) == 1.0
    assert (
        running.events("duplicate", "ECS Service Action")
        + running.events("duplicate", "ECS Deployment State Change")
        >= 4
    )


def test_a_replica_sees_state_another_replica_wrote(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Gauges come from the table: a replica that never saw the event still reports it."""
    running = start_daemon(metrics={"service_state_refresh_seconds": 0.5})
    impaired = service_event(DEFAULT_SERVICES[2], "action", "SERVICE_TASK_START_IMPAIRED", T0)
    assert service_store(stack).apply(event(impaired)) is Outcome.APPLIED  # "another replica"
    wait_for(lambda: gauge(running, "ecswatch_service_task_start_impaired", "billing") == 1.0)
    assert running.processed() == 0


def test_a_service_event_dynamodb_refuses_is_dead_lettered_not_retried(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    """Same rule as task items: a permanent refusal goes to the DLQ with its reason."""
    too_big = dict(service_event(DEFAULT_SERVICES[0], "action", "SERVICE_STEADY_STATE", T0))
    too_big["id"] = "x" * 420_000  # stored in the sort key: over DynamoDB's 400 KB
    running = start_daemon()
    stack.send_events([too_big])
    wait_for(lambda: running.processed() >= 1 and stack.queue_counts() == (0, 0))
    [dead] = stack.dead_letters()
    assert dead["MessageAttributes"]["ecswatch-reason"]["StringValue"] == "item_too_large"
    assert running.events("invalid", "ECS Service Action") == 1
    assert running.events("failed", "ECS Service Action") == 0


class LosesFirstMarkerReply:
    """A client whose first PutItem reaches DynamoDB and then times out: the reply is lost."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.meta = client.meta
        self.lost = 0

    def update_item(self, **request: Any) -> Any:
        return self._client.update_item(**request)

    def put_item(self, **request: Any) -> Any:
        response = self._client.put_item(**request)
        if not self.lost:
            self.lost += 1
            raise ReadTimeoutError(endpoint_url="http://dynamodb")
        return response


def test_a_marker_whose_reply_was_lost_counts_once_on_its_retry(stack: Stack) -> None:
    """DynamoDB applied the marker, the reply timed out, the retry met it: it is ours, so the
    event counts (rolled_back included); another replica's copy is still a duplicate."""
    store = service_store(stack)
    lossy = LosesFirstMarkerReply(store._client)
    store._client = lossy
    web = DEFAULT_SERVICES[0]
    rollback = event(
        service_event(web, "deployment", "SERVICE_DEPLOYMENT_IN_PROGRESS", T0,
                      reason="ECS deployment circuit breaker: rolling back to deploymentId d1.")
    )  # fmt: skip
    assert rollback.deployment_outcome == "rolled_back"
    assert store.apply(rollback) is Outcome.APPLIED
    assert lossy.lost == 1
    assert service_store(stack).apply(rollback) is Outcome.DUPLICATE
    assert store.apply(rollback) is Outcome.DUPLICATE
