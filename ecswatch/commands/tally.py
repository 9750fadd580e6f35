"""What `ecswatch report` learns about one service's tasks, fed one task item at a time: deaths
by cause, crash loops, OOM kills by container and start-phase quantiles, in memory bounded by
the window (never by the number of tasks), so the report streams over any table.

Crash loops are judged as the ECSServiceCrashLooping alert judges them: at least
CRASH_LOOP_DEATHS deaths of a failure cause, each within CRASH_LOOP_LIFETIME_SECONDS of the
task reaching RUNNING, in a span of CRASH_LOOP_SPAN_SECONDS. Deaths are kept as counts per
1-minute slot (never one entry per task: at most one counter per minute of the window): a span
is 15 consecutive slots, so deaths within 14 minutes of each other are always seen as one loop,
and within 15 they may be.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ecswatch.domain.stops import (
    PHASES,
    classify,
    is_failure,
    lifetime_seconds,
    oom_containers,
    start_phases,
)
from ecswatch.domain.times import parse_time

CRASH_LOOP_DEATHS = 3
CRASH_LOOP_LIFETIME_SECONDS = 600.0
CRASH_LOOP_SPAN_SECONDS = 900
SLOT_SECONDS = 60
QUANTILES = (0.5, 0.95)


def task_detail(item: Mapping[str, Any]) -> dict[str, Any]:
    """A stored task item as the classifier reads a detail: the scan gives numbers as decimal
    strings, and the classifier wants each container's exitCode as an int."""
    detail = dict(item)
    containers = item.get("containers")
    if isinstance(containers, list):
        detail["containers"] = [
            {**c, "exitCode": _int(c.get("exitCode"))} if isinstance(c, Mapping) else c
            for c in containers
        ]
    return detail


def _int(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class Sketch:
    """Quantiles within 1% of the true value from log-spaced counts (DDSketch's idea): at most
    a few hundred counters however many values, for any range from milliseconds to days."""

    GAMMA = 1.02

    def __init__(self) -> None:
        self.zeros = 0  # a cached pull: equal start and stop times
        self.buckets: Counter[int] = Counter()

    @property
    def count(self) -> int:
        return self.zeros + self.buckets.total()

    def add(self, seconds: float) -> None:
        if seconds <= 0.001:
            self.zeros += 1
        else:
            self.buckets[math.ceil(math.log(seconds, self.GAMMA))] += 1

    def quantile(self, q: float) -> float | None:
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        seen = self.zeros
        if rank < seen:
            return 0.0
        for index in sorted(self.buckets):
            seen += self.buckets[index]
            if rank < seen:
                return 2 * self.GAMMA**index / (self.GAMMA + 1)
        return None  # unreachable: rank < count


@dataclass
class Deaths:
    """The summary one service gets in the report (its JSON shape)."""

    by_cause: dict[str, int] = field(default_factory=dict)
    failures: int = 0
    quick_failures: int = 0  # failure deaths within 10 min of starting
    crash_looping: bool = False
    crash_loop_last_at: str | None = None  # end of the last span that looped
    oom_kills: dict[str, int] = field(default_factory=dict)
    start_phases: dict[str, dict[str, float | int | None]] = field(default_factory=dict)


class DeathTally:
    """One service's running tally; `add` each of its task items, then `summary()`."""

    def __init__(self, since: datetime) -> None:
        self._since = since
        self._causes: Counter[str] = Counter()
        self._quick_slots: Counter[int] = Counter()
        self._oom: Counter[str] = Counter()
        self._phases = {phase: Sketch() for phase, _, _ in PHASES}

    def add(self, item: Mapping[str, Any]) -> None:
        detail = task_detail(item)
        created = parse_time(detail.get("createdAt") or detail.get("startedAt"))
        if created is not None and created >= self._since:
            for phase, seconds in start_phases(detail):
                self._phases[phase].add(seconds)
        if detail.get("lastStatus") != "STOPPED":
            return
        stopped = parse_time(detail.get("stoppedAt") or detail.get("updatedAt"))
        if stopped is None or stopped < self._since:
            return
        cause = classify(detail)
        self._causes[cause] += 1
        self._oom.update(name or "(unnamed)" for name in oom_containers(detail))
        lifetime = lifetime_seconds(detail)
        if is_failure(cause) and lifetime is not None and lifetime <= CRASH_LOOP_LIFETIME_SECONDS:
            self._quick_slots[int(stopped.timestamp()) // SLOT_SECONDS] += 1

    def summary(self) -> Deaths:
        span = CRASH_LOOP_SPAN_SECONDS // SLOT_SECONDS
        looping = [
            slot
            for slot in self._quick_slots
            if sum(self._quick_slots[slot - back] for back in range(span)) >= CRASH_LOOP_DEATHS
        ]
        last = None
        if looping:
            ended = datetime.fromtimestamp((max(looping) + 1) * SLOT_SECONDS, UTC)
            last = ended.isoformat(timespec="seconds").replace("+00:00", "Z")
        return Deaths(
            by_cause=dict(self._causes.most_common()),
            failures=sum(n for cause, n in self._causes.items() if is_failure(cause)),
            quick_failures=self._quick_slots.total(),
            crash_looping=bool(looping),
            crash_loop_last_at=last,
            oom_kills=dict(self._oom.most_common()),
            start_phases={
                phase: {
                    "count": sketch.count,
                    **{f"p{round(q * 100)}": _seconds(sketch.quantile(q)) for q in QUANTILES},
                }
                for phase, sketch in self._phases.items()
                if sketch.count
            },
        )


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
