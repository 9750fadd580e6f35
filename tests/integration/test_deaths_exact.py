"""Every stop-cause counter and histogram is exact across replicas, duplicates, reordering and a
SIGKILL, as PENDING→STOPPED is (issue 20 §2): in the chaos tests' style."""

from __future__ import annotations

import json
import random
from collections import Counter
from typing import Any

import pytest

from tests.conftest import Stack
from tests.deaths_stream import FAILURES, death_stream
from tests.integration.daemon_process import DaemonProcess, run_with_a_sigkill

pytestmark = pytest.mark.slow
WORKERS = 3


def by(process: DaemonProcess, name: str, *labels: str) -> Counter[tuple[str, ...]]:
    counted: Counter[tuple[str, ...]] = Counter()
    for (sample, pairs), value in process.metrics().items():
        if sample == name and value:
            found = dict(pairs)
            counted[tuple(found[label] for label in labels)] += int(value)
    return counted


def logged(victim: DaemonProcess, deployment_ids: dict[str, str]) -> dict[str, Counter[Any]]:
    """What the killed replica counted, from its per-message lines (written just after)."""
    seen: dict[str, Counter[Any]] = {k: Counter() for k in ("stopped", "phases", "outcomes")}
    for line in victim.events("message_processed"):
        if line.get("death"):
            seen["stopped"][line["death"]] += 1
        seen["phases"]["all"] += line.get("phases") or 0
        outcome = deployment_ids.get(line.get("event_id", ""))
        if outcome and line.get("outcome") != "duplicate":
            seen["outcomes"][outcome] += 1
    return seen


def test_two_replicas_a_sigkill_and_every_event_thrice_count_every_death_once(
    stack: Stack, processes: list[DaemonProcess]
) -> None:
    """Stopped by cause, OOM kills, failed lifetimes, start phases and deployment outcomes:
    never more than the stream's truth; with what the killed replica logged, all of it."""
    truth = death_stream(tasks=60, seed=11)
    rng = random.Random(11)
    deliveries = [json.dumps(b) for b in truth.bodies for _ in range(3)]
    rng.shuffle(deliveries)
    victim, survivors = run_with_a_sigkill(stack, deliveries, processes, replicas=2, kill_after=60)
    lost = logged(victim, truth.deployment_ids)

    def total(name: str, *labels: str) -> Counter[tuple[str, ...]]:
        summed: Counter[tuple[str, ...]] = Counter()
        for survivor in survivors:
            summed.update(by(survivor, name, *labels))
        return summed

    stopped = total("ecswatch_tasks_stopped_total", "group", "cause", "started")
    for key, count in stopped.items():  # never double counted, per series
        assert count <= truth.stopped[key], key
    expected_by_cause: Counter[str] = Counter()
    for (_, cause, _), n in truth.stopped.items():
        expected_by_cause[cause] += n
    counted_by_cause: Counter[str] = Counter()
    for (_, cause, _), n in stopped.items():
        counted_by_cause[cause] += n
    for cause, expected in expected_by_cause.items():
        counted = counted_by_cause[cause] + lost["stopped"][cause]
        assert expected - WORKERS <= counted <= expected, cause

    oom = total("ecswatch_container_oom_kills_total", "group", "container")
    assert all(n <= truth.oom[k] for k, n in oom.items())
    assert sum(oom.values()) + lost["stopped"]["oom"] >= sum(truth.oom.values()) - WORKERS

    lifetimes = total("ecswatch_failed_task_lifetime_seconds_count", "group")
    assert all(n <= truth.lifetimes[g] for (g,), n in lifetimes.items())
    lost_lifetimes = (
        sum(n for cause, n in lost["stopped"].items() if cause in FAILURES)
        - lost["stopped"]["image_pull"]
    )
    expected_lifetimes = sum(truth.lifetimes.values())
    assert expected_lifetimes - WORKERS <= sum(lifetimes.values()) + lost_lifetimes
    assert sum(lifetimes.values()) + lost_lifetimes <= expected_lifetimes

    phases = total("ecswatch_task_start_phase_seconds_count", "phase")
    assert all(n <= truth.phases[p] for (p,), n in phases.items())
    expected_phases = sum(truth.phases.values())
    counted_phases = sum(phases.values()) + lost["phases"]["all"]
    assert expected_phases - 3 * WORKERS <= counted_phases <= expected_phases

    outcomes = total("ecswatch_deployment_outcomes_total", "service", "outcome")
    assert all(n <= truth.outcomes[k] for k, n in outcomes.items())
    for outcome in ("completed", "failed", "rolled_back"):
        expected = sum(n for (_, o), n in truth.outcomes.items() if o == outcome)
        counted = sum(n for (_, o), n in outcomes.items() if o == outcome)
        assert expected - WORKERS <= counted + lost["outcomes"][outcome] <= expected, outcome
