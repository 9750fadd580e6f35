"""Every expiry rule ecswatch writes (`expiresAt`, the tables' TTL attribute) or reads: one place.

The argument, once, for all of them. DynamoDB's TTL deletes an item some time *after* its
`expiresAt`, never before, and readers (`report`, the gauges) leave out items past it at once.
1. The window (`is_expired`): an event older than `ttl_days` after its own time t is refused
   (outcome `expired`), whoever brings it back: a DLQ redrive, an archive replay, a late copy.
   Without it, a copy replayed after its item expired would count a failed start again or
   resurrect a task for ever. An event without a readable time is not refused.
2. A gone resource (a STOPPED task, an INACTIVE or failed container instance), whether its
   event wrote it or reconciliation marked it, and a service event's de-duplication marker,
   expire `ttl_days` after the later of now (w, the write) and the event's own time t
   (`expires_after_window`; for a mark, the stored event's time). A copy arriving at n is applied
   only if n - t <= ttl (rule 1), so n <= max(w, t) + ttl: the item or marker is still there
   and the copy is a duplicate, even with a skewed (future) t.
3. A service's item lives `idle_ttl_days` past the last sign of life: an applied event, or a
   reconciliation pass that found it ACTIVE (`idle_expires_at`). A service that says nothing
   for that long (deleted with reconciliation off) leaves the table.
4. A service reconciliation finds no longer ACTIVE is gone at once for every reader
   (`service_gone`: it records `goneAt`, and its counts go), until a pass finds it ACTIVE again
   (the name re-created). Its item stays until rule 1's window has closed for every event it
   emitted (`gone_service_expires_at`; TTL deleting it at once would let a late event create
   it afresh), and a state write for an event older than `goneAt` is refused: a late event
   cannot bring a deleted service back for `idle_ttl_days` with a stale
   `taskStartImpaired = 1`. ECS's clock stamps events and ours `goneAt`: the rule is off by
   the skew between them (NTP keeps it well under a second).
`ttl_days` / `idle_ttl_days` of 0 turn the rule off (no `expiresAt` is written).
"""

from __future__ import annotations

from datetime import UTC, datetime

from ecswatch.domain.times import normalize_time, parse_time

DAY_SECONDS = 86400
#: the item attribute of rule 4: when reconciliation found the service gone (sorts like time)
GONE_AT = "goneAt"


def is_expired(event_time: str | None, now: datetime, ttl_days: int) -> bool:
    """Rule 1: older than `ttl_days` after its own time. An unreadable time is not old."""
    if ttl_days <= 0:
        return False
    then = parse_time(event_time)
    return then is not None and (now - then).total_seconds() > ttl_days * DAY_SECONDS


def expires_after_window(now: datetime, event_time: str | None, ttl_days: int) -> int | None:
    """Rule 2: `ttl_days` after the later of `now` and `event_time`; None when off."""
    if ttl_days <= 0:
        return None
    then = parse_time(event_time)
    start = max(now, then) if then is not None else now
    return int(start.timestamp()) + ttl_days * DAY_SECONDS


def idle_expires_at(now: datetime, idle_ttl_days: int) -> int | None:
    """Rule 3: `idle_ttl_days` from now; None when off."""
    return int(now.timestamp()) + idle_ttl_days * DAY_SECONDS if idle_ttl_days > 0 else None


def gone_service_expires_at(now: datetime, ttl_days: int, idle_ttl_days: int) -> int | None:
    """Rule 4: once rule 1 refuses every event it emitted before now (without that window,
    the idle expiry); None when both are off."""
    if ttl_days > 0:
        return expires_after_window(now, None, ttl_days)
    return idle_expires_at(now, idle_ttl_days)


def gone_since(now: datetime) -> str:
    """Rule 4's `goneAt`, in the form of service events' own times (so the two compare)."""
    return normalize_time(now.astimezone(UTC).isoformat()) or ""


def service_gone(expires_at: object, gone_at: object, now: datetime) -> bool:
    """What readers (gauges, `report`) leave out: past its expiry, or found gone (rule 4)."""
    if gone_at:
        return True
    try:
        return expires_at is not None and float(str(expires_at)) <= now.timestamp()
    except ValueError:
        return False
