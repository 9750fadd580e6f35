"""Fixtures: moto's server over real HTTP, a bootstrapped stack per test, an embedded daemon."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer
from prometheus_client import CollectorRegistry

from ecswatch.commands.bootstrap import BootstrapResult, bootstrap
from ecswatch.config import Config, load_config, override
from ecswatch.daemon.app import Daemon
from ecswatch.dev.emulator import Emulator
from ecswatch.logging import configure_logging

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
# Read once, before _aws_environment clears every ECSWATCH_* variable for the tests.
REQUIRE_TOOLS = bool(os.environ.get("ECSWATCH_REQUIRE_TOOLS"))


# Modules whose tests share one costly module fixture (the image, built once): under xdist one
# worker runs each such module whole. Every other test is scheduled on its own.
# test_partial_outage.py: its two outages start 8 daemons each; side by side, 16 daemons on two
# cores starved the heartbeats of their 10 s visibility.
WHOLE_MODULES = ("tests/integration/test_image.py", "tests/integration/test_partial_outage.py")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`make test` (-n, --dist load): one test at a time to whichever worker is free, in the
    order of pytest_collection_modifyitems below (slow first), a WHOLE_MODULES module at once."""
    if config.getvalue("dist") != "load":
        return None  # an explicit --dist choice is xdist's
    from xdist.scheduler import LoadScopeScheduling  # noqa: PLC0415 (only under xdist)

    class OneTestOrModule(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in WHOLE_MODULES else nodeid

    return OneTestOrModule(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under xdist, the slow tests first, then the integration tests, so no long test starts
    last and keeps one worker busy while the others are done (a stable sort: identical on every
    worker, which xdist requires)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(
            key=lambda item: (
                item.get_closest_marker("slow") is None,
                not item.nodeid.startswith("tests/integration/"),
            )
        )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """Under ECSWATCH_REQUIRE_TOOLS (CI) nothing may skip: a skip is reported as a failure."""
    report = yield
    if REQUIRE_TOOLS and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped, but ECSWATCH_REQUIRE_TOOLS says nothing may be: {reason}"
    return report


@pytest.fixture(autouse=True)
def _fail_on_thread_exceptions() -> Iterator[None]:
    """A background thread that dies from an exception fails the test (arroyo's habit)."""
    errors: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = errors.append
    yield
    threading.excepthook = previous
    assert not errors, f"exception in thread {errors[0].thread}: {errors[0].exc_value!r}"


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("ECSWATCH_", "AWS_")):
            monkeypatch.delenv(name)
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    configure_logging("WARNING", "json")


@pytest.fixture(scope="session")
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def http_get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except urllib.error.URLError as exc:  # not listening (yet): status 0
        return 0, str(exc.reason)


_deserializer = TypeDeserializer()


@dataclass
class Stack:
    """A bootstrapped queue, DLQ, tables and rule on the emulator, with helpers to look at them."""

    emulator: Emulator
    config: Config
    resources: BootstrapResult
    sqs: Any
    dynamodb: Any
    events: Any

    def send(self, *bodies: str) -> None:
        for start in range(0, len(bodies), 10):
            entries = [
                {"Id": str(i), "MessageBody": body}
                for i, body in enumerate(bodies[start : start + 10])
            ]
            response = self.sqs.send_message_batch(
                QueueUrl=self.resources.queue_url, Entries=entries
            )
            assert not response.get("Failed"), response["Failed"]

    def send_events(self, envelopes: list[dict[str, Any]]) -> None:
        self.send(*(json.dumps(e) for e in envelopes))

    def items(self, table: str) -> dict[str, dict[str, Any]]:
        key = "taskArn" if table == self.config.dynamodb.task_table else "containerInstanceArn"
        found: dict[str, dict[str, Any]] = {}
        for page in self.dynamodb.get_paginator("scan").paginate(TableName=table):
            for raw in page["Items"]:
                item = {k: _deserializer.deserialize(v) for k, v in raw.items()}
                found[item[key]] = item
        return found

    def stored(self) -> dict[str, tuple[int, str]]:
        """arn -> (version, status) of every task and container-instance item, as Truth keeps it."""
        items = self.task_items() | self.items(self.config.dynamodb.container_instance_table)
        return {
            arn: (int(item["version"]), item.get("lastStatus") or item.get("status"))
            for arn, item in items.items()
        }

    def task_items(self) -> dict[str, dict[str, Any]]:
        return self.items(self.config.dynamodb.task_table)

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=self.resources.dead_letter_queue_url,
                MaxNumberOfMessages=10,
                MessageAttributeNames=["All"],
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not got:
                return messages
            messages += got

    def queue_counts(self) -> tuple[int, int]:
        """(visible, in flight) messages of the source queue."""
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.resources.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        )["Attributes"]
        return (
            int(attributes["ApproximateNumberOfMessages"]),
            int(attributes["ApproximateNumberOfMessagesNotVisible"]),
        )

    def daemon_environment(self, **overrides: str) -> dict[str, str]:
        """Environment for an `ecswatch run` subprocess aimed at this stack."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECSWATCH_")}
        env.update(
            ECSWATCH_AWS_ENDPOINT_URL=self.emulator.url,
            ECSWATCH_AWS_REGION=REGION,
            ECSWATCH_SQS_QUEUE_URL=self.resources.queue_url,
            ECSWATCH_SQS_DEAD_LETTER_QUEUE_URL=self.resources.dead_letter_queue_url,
            ECSWATCH_SQS_WAIT_TIME_SECONDS="1",
            ECSWATCH_METRICS_HOST="127.0.0.1",
            ECSWATCH_METRICS_PORT="0",
            ECSWATCH_LOG_FORMAT="json",
            ECSWATCH_RECONCILE_INTERVAL_SECONDS="0",
        )
        env.update(overrides)
        return env


def make_clients(url: str) -> dict[str, Any]:
    return {
        name: boto3.client(name, endpoint_url=url, region_name=REGION)
        for name in ("sqs", "dynamodb", "events")
    }


@pytest.fixture
def stack(emulator: Emulator) -> Stack:
    emulator.reset()
    base = load_config(
        None,
        {"ECSWATCH_AWS_ENDPOINT_URL": emulator.url, "ECSWATCH_AWS_REGION": REGION},
        require_queue=False,
    )
    clients = make_clients(emulator.url)
    resources = bootstrap(base, **clients)
    config = override(
        resources.configure(base),
        sqs={"wait_time_seconds": 1},
        metrics={"host": "127.0.0.1", "port": 0},
        workers={"shutdown_timeout": 10.0},
        # Off unless a test is about it: its ECS and DynamoDB calls would blur exact counts.
        reconcile={"interval_seconds": 0.0},
    )
    return Stack(emulator, config, resources, **clients)


@dataclass
class Running:
    daemon: Daemon
    registry: CollectorRegistry

    def value(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0

    def events(self, outcome: str, detail_type: str = "ECS Task State Change") -> float:
        return self.value("ecswatch_events_total", detail_type=detail_type, outcome=outcome)

    def failed_starts(self) -> Counter[tuple[str, str, str]]:
        """PENDING→STOPPED counts by (cluster, group, stop_code), as simulate.Truth keeps them
        (summed over accounts and regions)."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for metric in self.registry.collect():
            for s in metric.samples:
                if s.name == "ecswatch_tasks_pending_to_stopped_total" and s.value:
                    counts[s.labels["cluster"], s.labels["group"], s.labels["stop_code"]] += int(
                        s.value
                    )
        return counts

    def processed(self) -> float:
        return sum(
            sample.value
            for metric in self.registry.collect()
            if metric.name == "ecswatch_events"
            for sample in metric.samples
            if sample.name == "ecswatch_events_total"
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.daemon.http.port}"


@pytest.fixture
def start_daemon(stack: Stack) -> Iterator[Callable[..., Running]]:
    """Start an in-process daemon on the stack; `start_daemon(workers=2, sqs={...})`."""
    started: list[Daemon] = []

    def start(**sections: dict[str, Any]) -> Running:
        config = override(stack.config, **sections)
        registry = CollectorRegistry()
        daemon = Daemon(config, registry)
        daemon.start()
        started.append(daemon)
        return Running(daemon, registry)

    yield start
    for daemon in started:
        daemon.stop()
