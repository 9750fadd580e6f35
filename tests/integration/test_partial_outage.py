"""Partial outages with two real `ecswatch run` replicas per case: one table alone denied
(AccessDenied) or deleted then re-created, for longer than maxReceiveCount x visibility, the
stream sent during it. Only that table's route pauses, once per replica, the other routes flow,
and afterwards no valid message is in the DLQ and state and counters are exact.

The four tables' cases run side by side, each on its own queue, DLQ and tables, so the file
waits through two outages, not eight. And one replica whose rarely written route's only held
message expires: the pause ends, though the table is still denied."""

from __future__ import annotations

import collections
import random
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from ecswatch.commands.bootstrap import bootstrap
from ecswatch.config import load_config, override
from ecswatch.dev.emulator import ACCESS_DENIED, Emulator
from ecswatch.dev.simulate import Stream, container_instance_events, generate
from tests.conftest import REGION, Stack, http_get, make_clients, wait_for
from tests.integration.daemon_process import DaemonProcess

pytestmark = pytest.mark.slow

# 10 s, not 5: the heartbeat extends at a third of it, so an extension may take up to 6 s to
# reach the emulator (8 daemons on a loaded 2-core CI machine) before a held message shows again.
VISIBILITY = 10
MAX_RECEIVE_COUNT = 2
OUTAGE_SECONDS = MAX_RECEIVE_COUNT * VISIBILITY + 3
#: the broken table's config key -> the route that pauses and the reason, by outage
ROUTES = {
    "task_table": "task",
    "container_instance_table": "container_instance",
    "service_table": "service",
    "service_event_table": "service",
}
REASONS = {"deny": "access_denied", "delete": "missing_resource"}
Counts = collections.Counter[tuple[str, ...]]


@dataclass
class Case:
    """One broken table: its own stack, stream and two replicas."""

    key: str
    stack: Stack
    stream: Stream
    replicas: list[DaemonProcess] = field(default_factory=list)
    #: ecswatch_paused of each replica, sampled from its pause until the outage ended
    samples: list[float] = field(default_factory=list)

    @property
    def table(self) -> str:
        return str(getattr(self.stack.config.dynamodb, self.key))

    def counted(self, metric: str, *labels: str) -> Counts:
        """A counter summed over both replicas, by `labels`."""
        counts: Counts = collections.Counter()
        for replica in self.replicas:
            for (name, found), value in replica.metrics().items():
                if name == metric and value:
                    counts[tuple(dict(found)[label] for label in labels)] += int(value)
        return counts


def make_case(emulator: Emulator, index: int, key: str) -> Case:
    """A stack whose queue, DLQ and four tables carry the case's own prefix."""
    prefix = f"p{index}-"
    base = load_config(
        None,
        {"ECSWATCH_AWS_ENDPOINT_URL": emulator.url, "ECSWATCH_AWS_REGION": REGION},
        require_queue=False,
    )
    config = override(
        base,
        dynamodb={name: prefix + str(getattr(base.dynamodb, name)) for name in ROUTES},
        sqs={"visibility_timeout": VISIBILITY},
        bootstrap={
            "queue_name": f"{prefix}events",
            "dead_letter_queue_name": f"{prefix}events-dlq",
            "max_receive_count": MAX_RECEIVE_COUNT,
            "rule_name": f"{prefix}rule",
        },
    )
    clients = make_clients(emulator.url)
    resources = bootstrap(config, **clients)
    stack = Stack(emulator, resources.configure(config), resources, **clients)
    stream = generate(
        tasks=8, copies=2, seed=30 + index, container_instances=6, with_service_events=True
    )
    return Case(key, stack, stream)


def start_replicas(case: Case) -> None:
    tables = case.stack.config.dynamodb
    env = case.stack.daemon_environment(
        ECSWATCH_SQS_VISIBILITY_TIMEOUT=str(VISIBILITY),
        ECSWATCH_WORKERS_COUNT="2",
        ECSWATCH_METRICS_SERVICE_STATE_REFRESH_SECONDS="0",
        **{f"ECSWATCH_DYNAMODB_{name.upper()}": getattr(tables, name) for name in ROUTES},
    )
    case.replicas = [DaemonProcess(env), DaemonProcess(env)]


def ready(replica: DaemonProcess) -> bool:
    return http_get(f"http://127.0.0.1:{replica.port}/readyz")[0] == 200


def paused_gauge(replica: DaemonProcess, reason: str) -> float:
    """`ecswatch_paused{reason}` read off its line, without parsing the whole page: the test's
    process also serves the emulator, which parsing eight replicas' pages every second slows."""
    status, text = http_get(f"http://127.0.0.1:{replica.port}/metrics")
    assert status == 200
    prefix = f'ecswatch_paused{{reason="{reason}"}} '
    values = [float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)]
    return values[0] if values else 0.0


@pytest.mark.parametrize("outage", ["deny", "delete"])
def test_one_broken_table_pauses_its_route_once_and_no_valid_message_reaches_the_dlq(
    emulator: Emulator, processes: list[DaemonProcess], outage: str
) -> None:
    """Each table alone broken for longer than maxReceiveCount x visibility: one pause and one
    resume per replica, ecswatch_paused steady meanwhile, nothing dead-lettered, all exact."""
    emulator.reset()
    cases = [make_case(emulator, i, key) for i, key in enumerate(ROUTES)]
    for case in cases:
        start_replicas(case)
        processes.extend(case.replicas)
    for case in cases:
        for replica in case.replicas:
            wait_for(lambda r=replica: ready(r), timeout=60)
    reason = REASONS[outage]
    if outage == "deny":
        emulator.faults.dynamodb_error = ACCESS_DENIED
        emulator.faults.dynamodb_error_tables = tuple(case.table for case in cases)
    else:
        for case in cases:
            case.stack.dynamodb.delete_table(TableName=case.table)
    with ThreadPoolExecutor(len(cases)) as senders:
        list(senders.map(lambda c: c.stack.send(*c.stream.bodies()), cases))
    started = time.monotonic()  # the whole stream is in: its messages wait out the outage
    while time.monotonic() - started < OUTAGE_SECONDS:
        for case in cases:
            for replica in case.replicas:
                if replica.events("consumer_paused"):
                    case.samples.append(paused_gauge(replica, reason))
        time.sleep(1.0)
    if outage == "deny":
        emulator.faults.reset()
    else:
        for case in cases:
            bootstrap(case.stack.config, **make_clients(emulator.url))
    for case in cases:
        wait_for(lambda c=case: c.stack.queue_counts() == (0, 0), timeout=60, interval=0.5)
    for case in cases:
        truth, route = case.stream.truth, ROUTES[case.key]
        assert case.stack.dead_letters() == [], case.key
        assert case.stack.stored() == truth.final, case.key
        assert (
            case.counted("ecswatch_tasks_pending_to_stopped_total", "cluster", "group", "stop_code")
            == truth.failed_starts
        )
        assert (
            case.counted("ecswatch_service_events_total", "cluster", "service", "event_name")
            == truth.service_events
        )
        assert (
            case.counted("ecswatch_deployments_total", "cluster", "service", "state")
            == truth.deployments
        )
        for replica in case.replicas:
            paused, resumed = replica.events("consumer_paused"), replica.events("consumer_resumed")
            assert [(e["route"], e["reason"]) for e in paused] == [(route, reason)], case.key
            assert [e["route"] for e in resumed] == [route], case.key
            assert replica.metric("ecswatch_paused", reason=reason) == 0
        assert case.samples and set(case.samples) == {1.0}, case.key
    with ThreadPoolExecutor(len(processes)) as stoppers:  # each takes a second or so
        assert set(stoppers.map(lambda r: r.terminate()[0], processes)) == {0}


def test_a_held_message_that_expires_does_not_leave_its_rarely_written_route_paused(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """The container-instance table denied and its only event expiring while held: the probe
    that finds it expired ends the pause (nothing is left to hold), instead of /readyz 503 and
    ecswatch_paused 1 until the route's next event, hours away."""
    replica = DaemonProcess(
        stack.daemon_environment(ECSWATCH_SQS_VISIBILITY_TIMEOUT="5", ECSWATCH_WORKERS_COUNT="1")
    )
    processes.append(replica)
    wait_for(lambda: ready(replica), timeout=60)
    faults = stack.emulator.faults
    faults.dynamodb_error = ACCESS_DENIED
    faults.dynamodb_error_tables = (stack.config.dynamodb.container_instance_table,)
    try:
        ttl = timedelta(days=stack.config.dynamodb.stopped_task_ttl_days)
        # Its one change is 30 s after `start`: it expires 4 s after it is sent.
        start = datetime.now(UTC) - ttl - timedelta(seconds=30 - 4)
        stack.send_events(container_instance_events(random.Random(7), "rare", start, changes=1))
        wait_for(lambda: replica.events("consumer_paused"), timeout=20)
        [resumed] = wait_for(lambda: replica.events("consumer_resumed"), timeout=30)
        assert resumed["route"] == "container_instance" and resumed["held"] == 0
        assert ready(replica) and replica.metric("ecswatch_paused", reason="access_denied") == 0
        wait_for(lambda: stack.queue_counts() == (0, 0), timeout=20)  # expired: deleted
        assert stack.dead_letters() == []
    finally:
        faults.reset()
    assert replica.terminate()[0] == 0
