"""ISO 8601 times as ECS and EventBridge write them ('...Z', offsets, or naive meaning UTC)."""

from __future__ import annotations

from datetime import UTC, datetime


def parse_time(value: object) -> datetime | None:
    """An aware datetime, or None when `value` is absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def normalize_time(value: object) -> str | None:
    """Any ISO 8601 time -> 'YYYY-MM-DDTHH:MM:SS.mmmZ' in UTC (sorts like time), or None."""
    parsed = parse_time(value)
    if parsed is None:
        return None
    return parsed.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
