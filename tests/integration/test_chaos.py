"""Faults, kills, outages and hostile input: nothing lost, nothing double counted.

Each test here is a scenario of docs/guarantees.md. They are slow (tens of seconds) and CI runs
them all.
"""

from __future__ import annotations

import copy
import json
import os
import random
import time
from collections.abc import Callable

import pytest

from ecswatch.commands.bootstrap import bootstrap
from ecswatch.config import load_config
from ecswatch.daemon.pipeline.queue import REASON_ATTRIBUTE
from ecswatch.dev.emulator import Emulator
from ecswatch.dev.simulate import generate
from ecswatch.domain.events import KNOWN_DETAIL_TYPES, OTHER_DETAIL_TYPE
from tests.conftest import Running, Stack, http_get, make_clients, wait_for
from tests.integration.daemon_process import DaemonProcess, run_with_a_sigkill

pytestmark = pytest.mark.slow
STATE_CHANGES = ("ECS Task State Change", "ECS Container Instance State Change")


def test_replicas_with_one_sigkilled_mid_run_end_exact(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    # ~100 task lifecycles, every event delivered 2 or 3 times, shuffled, fed in waves so
    # moto's queue stays shallow.
    stream = generate(tasks=100, container_instances=4, copies=1, seed=31)
    rng = random.Random(31)
    deliveries = [b for b in stream.bodies() for _ in range(rng.choice((2, 3)))]
    rng.shuffle(deliveries)
    victim, survivors = run_with_a_sigkill(stack, deliveries, processes, replicas=3, kill_after=50)

    assert stack.stored() == stream.truth.final
    counted = sum(r.total("ecswatch_tasks_pending_to_stopped_total") for r in survivors)
    expected = sum(stream.truth.failed_starts.values())
    # The killed replica's counter died with it. What it counted is in its log lines (written
    # just after counting), give or take the messages in hand when it died (one per worker).
    lost = sum(1 for e in victim.events("message_processed") if e.get("failed_start"))
    assert counted <= expected  # never double counted
    assert expected - lost - 3 <= counted <= expected - lost


def test_throttling_errors_and_stalls_past_visibility_lose_nothing(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    faults = stack.emulator.faults
    faults.throttle_share, faults.server_error_share = 0.2, 0.1
    faults.stall_share, faults.stall_seconds = 0.03, 7.0  # > the 5 s visibility below
    stream = generate(tasks=20, copies=2, seed=17)
    running = start_daemon(sqs={"visibility_timeout": 5}, workers={"count": 4})
    stack.send(*stream.bodies())
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=180)
    injected = dict(stack.emulator.injector.injected)
    faults.reset()
    assert stack.stored() == stream.truth.final
    assert running.failed_starts() == stream.truth.failed_starts
    assert injected["stall"] > 0
    retries = running.value("ecswatch_retries_total", operation="PutItem")
    failed = sum(running.events("failed", k) for k in STATE_CHANGES)
    assert retries + failed == injected["throttle"] + injected["server_error"]
    # Every delivery got an outcome; at least one per delivery, more if SQS redelivered.
    settled = sum(
        running.events(o, k) for o in ("applied", "duplicate", "stale") for k in STATE_CHANGES
    )
    assert settled >= len(stream.envelopes)


def test_emulator_outage_turns_readyz_503_and_the_daemon_resumes(
    emulator: Emulator, processes: list[DaemonProcess]
) -> None:
    # A private emulator on its own port, so it can really go away (connection refused).
    emulator.reset()
    private = Emulator().start()
    port = int(private.url.rsplit(":", 1)[1])
    clients = make_clients(private.url)
    config = load_config(None, {"ECSWATCH_AWS_ENDPOINT_URL": private.url}, require_queue=False)
    resources = bootstrap(config, **clients)
    env = {
        **os.environ,
        "ECSWATCH_AWS_ENDPOINT_URL": private.url,
        "ECSWATCH_AWS_REGION": "us-east-1",
        "ECSWATCH_SQS_QUEUE_URL": resources.queue_url,
        "ECSWATCH_SQS_WAIT_TIME_SECONDS": "1",
        "ECSWATCH_METRICS_HOST": "127.0.0.1",
        "ECSWATCH_METRICS_PORT": "0",
        "ECSWATCH_LOG_FORMAT": "json",
    }
    daemon = DaemonProcess(env)
    processes.append(daemon)
    ready = f"http://127.0.0.1:{daemon.port}/readyz"
    wait_for(lambda: http_get(ready)[0] == 200)
    private.stop()
    outage_started = time.monotonic()
    wait_for(lambda: http_get(ready)[0] == 503, timeout=30)  # window: 2 × 1 s + 10 s
    assert http_get(f"http://127.0.0.1:{daemon.port}/healthz")[0] == 200
    time.sleep(max(0.0, 20 - (time.monotonic() - outage_started)))  # stay down ~20 s in all
    assert daemon.proc.poll() is None
    private = Emulator(port=port).start()  # moto's state lives in this process: it is all back
    try:
        wait_for(lambda: http_get(ready)[0] == 200, timeout=60)
        stream = generate(tasks=3, copies=1, seed=2, container_instances=0)
        make_clients(private.url)["sqs"].send_message(
            QueueUrl=resources.queue_url, MessageBody=stream.bodies()[0]
        )
        wait_for(lambda: daemon.total("ecswatch_events_total", outcome="applied") >= 1)
        assert daemon.events("receive_aws_error")  # it saw the outage, and lived
    finally:
        private.stop()


def hostile_bodies(n: int, seed: int) -> list[str]:
    """Realistic events, mutated: missing keys, wrong types, huge strings, deep nesting, floats
    and unicode, non-ECS sources, and plain garbage. Deterministic for a seed."""
    rng = random.Random(seed)
    base = generate(tasks=10, copies=1, seed=seed).envelopes
    bodies: list[str] = []
    for i in range(n):
        env = copy.deepcopy(rng.choice(base))
        detail = env["detail"]
        match i % 8:
            case 1:
                detail.pop(rng.choice(["taskArn", "containerInstanceArn", "version"]), None)
            case 2:
                detail["version"] = rng.choice(["7", 1.5, None, -3, 10**40, True, [1]])
            case 3:
                env["source"] = rng.choice(["aws.ec2", "", None, 42, {"a": 1}])
            case 4:
                detail["huge"] = "x" * rng.randint(1_000, 60_000)
            case 5:
                # DynamoDB allows 32 levels (moto does not check; AWS answers ValidationException,
                # which ecswatch dead-letters as rejected_by_dynamodb).
                nested: object = "leaf"
                for _ in range(rng.randint(1, 60)):
                    nested = {"n": [nested]}
                detail["nested"] = nested
            case 6:
                detail["floats"] = [rng.uniform(-1e6, 1e6) for _ in range(10)]
                detail["name"] = "ünïcødé ✓ 日本語 😀"
            case 7:
                bodies.append(
                    rng.choice(["", " ", "{", "null", "[]", '"s"', "{}", "true"]) + str(i)
                )
                continue
        bodies.append(json.dumps(env))
    return bodies


def test_hostile_bodies_through_the_daemon_are_each_accounted_for(
    stack: Stack, start_daemon: Callable[..., Running]
) -> None:
    bodies = hostile_bodies(160, seed=9)
    running = start_daemon()
    stack.send(*bodies)
    wait_for(lambda: running.processed() >= len(bodies), timeout=90)
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=30)
    dead = stack.dead_letters()
    dead_lettered = sum(
        s.value
        for m in running.registry.collect()
        for s in m.samples
        if s.name == "ecswatch_dead_lettered_total"
    )
    invalid = sum(running.events("invalid", k) for k in (*KNOWN_DETAIL_TYPES, OTHER_DETAIL_TYPE))
    assert invalid > 0
    assert len(dead) == dead_lettered == invalid
    assert all(m["MessageAttributes"][REASON_ATTRIBUTE]["StringValue"] for m in dead)
    assert {m["Body"] for m in dead} <= set(bodies)
    assert sum(running.events("failed", k) for k in STATE_CHANGES) == 0
    # Unmutated events (every 8th body) all landed.
    stored = {arn: v for arn, (v, _) in stack.stored().items()}
    for body in bodies[::8]:
        detail = json.loads(body)["detail"]
        arn = detail.get("taskArn") or detail["containerInstanceArn"]
        assert stored[arn] >= detail["version"]
