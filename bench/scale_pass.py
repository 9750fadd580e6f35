"""One reconciliation pass, the daemon's own (Reconciler.run_pass), measured in its own process
for bench/scale.py: configuration from the ECSWATCH_* environment, one JSON line out.

ECS and DynamoDB calls are counted by operation with botocore's event hooks, and the seconds
spent inside them (the emulator's time plus botocore's) are summed apart from the rest (mostly
the rate limiter's waits at `reconcile.max_api_calls_per_second`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry

from ecswatch.config import load_config
from ecswatch.daemon.aws.clients import make_client
from ecswatch.daemon.expose.metrics import Metrics
from ecswatch.daemon.reconcile.guard import attempt_timeouts
from ecswatch.daemon.reconcile.metrics import ReconcileMetrics
from ecswatch.daemon.reconcile.reconciler import Reconciler


class Calls:
    """Counts and times every call a client makes (botocore's before/after-call events)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.seconds = 0.0
        self._started: dict[int, float] = {}

    def watch(self, client: Any) -> Any:
        client.meta.events.register("before-call", self._before)
        client.meta.events.register("after-call", self._after)
        return client

    def _before(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1
        self._started[id(model)] = time.perf_counter()

    def _after(self, model: Any, **_: Any) -> None:
        self.seconds += time.perf_counter() - self._started.pop(id(model), time.perf_counter())


def peak_rss_mib() -> float:
    """VmHWM: this program's peak (rusage's maxrss would count the parent's pages at fork)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> int:
    config = load_config(None, dict(os.environ), require_queue=False)
    ecs_calls, dynamodb_calls = Calls(), Calls()
    connect, read = attempt_timeouts(config.reconcile.lease_seconds)  # as the daemon's own
    ecs = ecs_calls.watch(
        make_client("ecs", config.aws, connect_timeout=connect, read_timeout=read)
    )
    dynamodb = dynamodb_calls.watch(
        make_client("dynamodb", config.aws, connect_timeout=connect, read_timeout=read)
    )
    registry = CollectorRegistry()
    reconciler = Reconciler(
        config,
        ecs=ecs,
        dynamodb=dynamodb,
        metrics=ReconcileMetrics(registry, interval_seconds=config.reconcile.interval_seconds),
        count_task=Metrics(registry).tasks.count_task,
    )
    started = time.monotonic()
    result = reconciler.run_pass()
    seconds = time.monotonic() - started
    reconciler.lease.release()  # the next measured pass is another process
    listed = sum(
        len(page.get("taskArns", []))
        for cluster in config.reconcile.cluster_list()
        for page in make_client("ecs", config.aws)
        .get_paginator("list_tasks")
        .paginate(cluster=cluster)
    )
    print(json.dumps({
        "result": result,
        "fixes": sum(
            sample.value
            for family in registry.collect()
            for sample in family.samples
            if sample.name == "ecswatch_reconcile_fixes_total"
        ),
        "seconds": seconds,
        "tasks_listed": listed,
        "ecs_calls": dict(ecs_calls.counts),
        "dynamodb_calls": dict(dynamodb_calls.counts),
        "call_seconds": ecs_calls.seconds + dynamodb_calls.seconds,
        "peak_rss_mib": peak_rss_mib(),
    }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
