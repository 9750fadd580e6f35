"""The exactness property over HTTP: real Store, moto's DynamoDB, four concurrent writers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings
from prometheus_client import CollectorRegistry

from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.aws.retry import WRITE, Retrier
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.pipeline.processor import Processor
from ecswatch.daemon.pipeline.queue import Message
from ecswatch.daemon.state.store import Store
from ecswatch.domain.events import Resource
from tests.conftest import Stack
from tests.domain.test_properties import NoQueue, failed_starts
from tests.strategies import Scenario, scenarios

pytestmark = pytest.mark.slow


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(scenario=scenarios(max_tasks=6))
def test_concurrent_writers_over_http_keep_state_and_count_exact(
    stack: Stack, scenario: Scenario
) -> None:
    # Each example uses fresh task ARNs, so one stack serves every example.
    client = make_client("dynamodb", stack.config.aws, max_pool_connections=8)
    tables = {
        Resource.TASK: stack.config.dynamodb.task_table,
        Resource.CONTAINER_INSTANCE: stack.config.dynamodb.container_instance_table,
    }
    registry = CollectorRegistry()
    store = Store(client, tables, Retrier(WRITE, abort=threading.Event()))
    processor = Processor(store, NoQueue(), Metrics(registry))  # type: ignore[arg-type]
    messages = [Message(f"m{i}", f"r{i}", body) for i, body in enumerate(scenario.deliveries)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(processor.handle, messages))
    stored = stack.task_items()
    assert {arn: int(stored[arn]["version"]) for arn in scenario.final} == scenario.final
    assert failed_starts(registry) == scenario.failed_starts
