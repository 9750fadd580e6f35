"""The expiry rules (domain.expiry): each outlives the window that could bring its item back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from ecswatch.domain import expiry

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
DAY = 86400


def test_a_gone_item_outlives_the_window_of_its_event_even_when_the_time_is_skewed() -> None:
    """Rule 2 from the later of now and the event's time; a copy inside rule 1 finds it."""
    past, future = NOW - timedelta(days=3), NOW + timedelta(days=2)
    stamp = int(NOW.timestamp())
    assert expiry.expires_after_window(NOW, past.isoformat(), 7) == stamp + 7 * DAY
    assert expiry.expires_after_window(NOW, future.isoformat(), 7) == stamp + 9 * DAY
    assert expiry.expires_after_window(NOW, None, 7) == stamp + 7 * DAY
    assert expiry.expires_after_window(NOW, "not a time", 7) == stamp + 7 * DAY
    assert expiry.expires_after_window(NOW, past.isoformat(), 0) is None
    last_admitted = future + timedelta(days=7)
    assert not expiry.is_expired(future.isoformat(), last_admitted, 7)
    assert int(last_admitted.timestamp()) <= stamp + 9 * DAY


def test_a_service_found_gone_is_gone_for_readers_at_once_but_kept_for_the_window() -> None:
    """Rule 4: readers leave it out now; its item stays until its late events are refused."""
    gone_at = expiry.gone_since(NOW)
    assert gone_at == "2026-12-01T12:00:00.000Z"  # the form of service events' times
    assert expiry.service_gone(None, gone_at, NOW)
    assert expiry.service_gone(str(int(NOW.timestamp())), None, NOW)
    assert not expiry.service_gone(str(int(NOW.timestamp()) + 1), None, NOW)
    assert not expiry.service_gone(None, None, NOW)
    stamp = int(NOW.timestamp())
    assert expiry.gone_service_expires_at(NOW, 7, 30) == stamp + 7 * DAY
    assert expiry.gone_service_expires_at(NOW, 0, 30) == stamp + 30 * DAY
    assert expiry.gone_service_expires_at(NOW, 0, 0) is None
    assert expiry.idle_expires_at(NOW, 30) == stamp + 30 * DAY
    assert expiry.idle_expires_at(NOW, 0) is None
