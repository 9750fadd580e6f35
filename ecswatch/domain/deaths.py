"""What one applied task write counts: a death by cause, OOM kills, lifetime, start phases.

Exactly once per task, by the rule that already makes PENDING→STOPPED exact: only an applied
write counts, the conditional write lets exactly one writer apply each version, and a write
counts what changed between the item it replaced (`Before`) and its own detail — the stop when
that item was not yet STOPPED, the start phases when it had no `startedAt`. Whatever version
comes later finds the item already STOPPED / started and counts nothing again.
`Before` is the item as the counting rules must see it: a reconciler's mark (`reconciledFrom`)
and a write whose count is still owed (`countOwedFrom`, written by a process that exports no
metrics) are seen as the state before them, so their count is paid by the next daemon write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ecswatch.domain.arns import cluster_name
from ecswatch.domain.events import Event, FailedStart, Resource, failed_start
from ecswatch.domain.stops import (
    Cause,
    classify,
    is_failure,
    lifetime_seconds,
    oom_containers,
    start_phases,
)

STOPPED = "STOPPED"
#: item attributes of a count still owed: the lastStatus ("" for none) and whether startedAt
#: was there before the write that did not count (see state.store and commands.reconcile)
OWED_FROM, OWED_STARTED = "countOwedFrom", "countOwedStarted"


@dataclass(frozen=True, slots=True)
class Before:
    """The replaced item, as the counting rules see it (None: there was no item)."""

    status: str | None = None
    started: bool = False


NOTHING = Before()


def before_of(
    status: str | None,
    started: bool,
    *,
    reconciled_from: str | None = None,
    owed_from: str | None = None,
    owed_started: bool = False,
) -> Before:
    """The counting view of a stored item's attributes (see the module docstring)."""
    if owed_from is not None:
        return Before(owed_from or None, owed_started)
    return Before(reconciled_from or status, started)


def needs_before(event: Event) -> bool:
    """Can the replaced item decide a count? Only for a STOPPED task or one carrying startedAt;
    for every other event the write need not return the item it replaced."""
    detail = event.detail
    return event.resource is Resource.TASK and (
        detail.get("lastStatus") == STOPPED or bool(detail.get("startedAt"))
    )


@dataclass(frozen=True, slots=True)
class Death:
    """A task that stopped: its cause, whether it had started, and what died with it."""

    cause: Cause
    started: bool
    oom: tuple[str, ...]
    lifetime: float | None  # seconds from startedAt, for failure causes after starting
    failed_start: FailedStart | None  # the PENDING→STOPPED count, as before


@dataclass(frozen=True, slots=True)
class WriteCounts:
    """Everything one applied write counts, with the task's labels."""

    account: str
    region: str
    cluster: str
    group: str
    death: Death | None
    phases: tuple[tuple[str, float], ...]


def task_counts(event: Event, before: Before) -> WriteCounts | None:
    """What this applied write counts, given the item it replaced; None: nothing."""
    if event.resource is not Resource.TASK:
        return None
    detail = event.detail
    stops_now = detail.get("lastStatus") == STOPPED and before.status != STOPPED
    started = bool(detail.get("startedAt"))
    starts_now = started and not before.started
    if not (stops_now or starts_now):
        return None
    # A task the item shows started (RUNNING seen, or owed/marked as such) did reach RUNNING,
    # even when its STOPPED version lacks startedAt: not a failed start.
    death = _death(event, detail, before, started or before.started) if stops_now else None
    return WriteCounts(
        account=event.account,
        region=event.region,
        cluster=cluster_name(detail.get("clusterArn")),
        group=str(detail.get("group") or ""),
        death=death,
        phases=tuple(start_phases(detail)) if starts_now else (),
    )


def _death(event: Event, detail: Any, before: Before, started: bool) -> Death:
    cause = classify(detail)
    lifetime = lifetime_seconds(detail) if started and is_failure(cause) else None
    return Death(
        cause=cause,
        started=started,
        oom=tuple(oom_containers(detail)),
        lifetime=lifetime,
        failed_start=None if started else failed_start(event, before.status),
    )
