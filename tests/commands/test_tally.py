"""The report's per-service tally: deaths by cause, crash loops, OOM kills and start phases from
task items as the scan yields them, in memory that does not grow with the tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ecswatch.commands.tally import DeathTally, Sketch
from tests.commands.stopped import as_scanned, task_item, with_times

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
SINCE = NOW - timedelta(hours=24)


def tally_of(*items: dict[str, object]) -> DeathTally:
    tally = DeathTally(SINCE)
    for item in items:
        tally.add(as_scanned(item))
    return tally


def test_deaths_are_counted_by_cause_and_failures_told_apart() -> None:
    """A scale-in, a Spot reclaim and a user stop are deaths but not the service's failures."""
    names = ["oom_kill", "elb_health_check_kill", "essential_exit_with_clean_sidecar",
             "scheduler_scale_in", "spot_interruption", "sigkill_after_stop_timeout",
             "image_pull_failure"]  # fmt: skip
    items = [
        task_item(name, task_id=f"t{i}", stopped_at=NOW - timedelta(hours=i + 1))
        for i, name in enumerate(names)
    ]
    deaths = tally_of(*items).summary()
    assert deaths.by_cause == {
        "oom": 1, "elb_health_check": 1, "essential_exit_error": 1, "scheduler": 1,
        "spot_interruption": 1, "user": 1, "image_pull": 1,
    }  # fmt: skip
    assert deaths.failures == 4
    assert not deaths.crash_looping


def test_oom_kills_are_counted_by_container_not_by_exit_137() -> None:
    """The OOM reason counts; the SIGKILL after stopTimeout (137, no reason) does not."""
    items = [
        task_item("oom_kill", task_id="a", stopped_at=NOW - timedelta(hours=5)),
        task_item("oom_kill", task_id="b", stopped_at=NOW - timedelta(hours=2)),
        task_item("sigkill_after_stop_timeout", task_id="c", stopped_at=NOW - timedelta(hours=1)),
    ]
    assert tally_of(*items).summary().oom_kills == {"worker": 2}


def test_three_quick_failures_within_fifteen_minutes_are_a_crash_loop() -> None:
    """As the alert: failure deaths within 10 min of starting, three in 15 min."""
    start = NOW - timedelta(hours=3)
    looping = tally_of(
        *(
            task_item("oom_kill", task_id=f"t{i}", stopped_at=start + timedelta(minutes=6 * i))
            for i in range(3)
        )
    ).summary()
    assert looping.crash_looping
    assert looping.quick_failures == 3
    assert looping.crash_loop_last_at is not None
    assert (
        start <= datetime.fromisoformat(looping.crash_loop_last_at) <= start + timedelta(minutes=20)
    )


@pytest.mark.parametrize(
    ("name", "minutes_apart"),
    [
        ("oom_kill", 30),  # quick failures, but spread out
        ("scheduler_scale_in", 1),  # not failures (and long-lived)
        ("elb_health_check_kill", 1),  # failures, quick: this one loops
    ],
)
def test_only_bunched_quick_failures_loop(name: str, minutes_apart: int) -> None:
    start = NOW - timedelta(hours=3)
    deaths = tally_of(
        *(
            task_item(
                name, task_id=f"t{i}", stopped_at=start + timedelta(minutes=minutes_apart * i)
            )
            for i in range(3)
        )
    ).summary()
    assert deaths.crash_looping is (name == "elb_health_check_kill")


def test_failures_after_a_long_run_are_not_a_crash_loop() -> None:
    """An unknown stop after 30 min of running, three times in a row: no loop."""
    start = NOW - timedelta(hours=3)
    items = []
    for i in range(3):
        item = task_item("oom_kill", task_id=f"t{i}", stopped_at=start + timedelta(minutes=i))
        stopped = datetime.fromisoformat(item["stoppedAt"])
        items.append(with_times(item, startedAt=stopped - timedelta(minutes=30)))
    deaths = tally_of(*items).summary()
    assert deaths.failures == 3
    assert deaths.quick_failures == 0
    assert not deaths.crash_looping


def test_deaths_before_the_window_are_left_out() -> None:
    old = task_item("oom_kill", task_id="old", stopped_at=SINCE - timedelta(minutes=1))
    deaths = tally_of(old).summary()
    assert deaths.by_cause == {}
    assert deaths.oom_kills == {}


def test_start_phases_give_p50_and_p95_within_one_percent() -> None:
    """Pulls of 1..100 s: p50 ≈ 50 s, p95 ≈ 95 s (nearest rank); a cached pull (0 s) counts."""
    items = []
    for i in range(100):
        item = task_item("oom_kill", task_id=f"t{i}", stopped_at=NOW - timedelta(hours=1))
        pulled = datetime.fromisoformat(item["pullStartedAt"]) + timedelta(seconds=i + 1)
        items.append(with_times(item, pullStoppedAt=pulled))
    phases = tally_of(*items).summary().start_phases
    assert phases["pull"]["count"] == 100
    assert phases["pull"]["p50"] == pytest.approx(50, rel=0.01)
    assert phases["pull"]["p95"] == pytest.approx(95, rel=0.01)
    assert set(phases) == {"provisioning", "pull", "start"}
    cached = with_times(items[0], pullStoppedAt=datetime.fromisoformat(items[0]["pullStartedAt"]))
    assert tally_of(cached).summary().start_phases["pull"]["p50"] == 0.0


def test_a_sketch_holds_a_few_hundred_counters_for_a_million_values() -> None:
    sketch = Sketch()
    for i in range(1_000_000):
        sketch.add(0.001 * (1 + i % 100_000))  # 1 ms .. 100 s
    assert sketch.count == 1_000_000
    assert len(sketch.buckets) < 700
    assert sketch.quantile(0.5) == pytest.approx(50.0, rel=0.01)


@pytest.mark.parametrize("offset_seconds", range(0, 60, 7))
def test_three_quick_failures_within_fourteen_minutes_loop_wherever_the_minute_falls(
    offset_seconds: int,
) -> None:
    """The per-minute slots never split a loop whose deaths span 14 minutes."""
    start = NOW - timedelta(hours=3) + timedelta(seconds=offset_seconds)
    deaths = tally_of(
        *(
            task_item("oom_kill", task_id=f"t{i}", stopped_at=start + timedelta(minutes=7 * i))
            for i in range(3)
        )
    ).summary()
    assert deaths.crash_looping
