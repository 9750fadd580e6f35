"""Fixtures for the tests that run `ecswatch run` as a subprocess."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.daemon_process import DaemonProcess


@pytest.fixture
def processes() -> Iterator[list[DaemonProcess]]:
    """Daemon processes a test started; whatever is still running is killed afterwards."""
    started: list[DaemonProcess] = []
    yield started
    for proc in started:
        proc.kill()
