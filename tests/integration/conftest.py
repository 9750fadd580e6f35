"""Fixtures for the tests that run `ecswatch run` as a subprocess."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.daemon_process import DaemonProcess


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test keeps its daemons' logs (stderr, JSON lines) in a directory it names."""
    report = yield
    started = getattr(item, "funcargs", {}).get("processes")
    if report.when == "call" and report.failed and started:
        directory = Path(tempfile.mkdtemp(prefix="ecswatch-daemon-logs-"))
        for index, proc in enumerate(started):
            (directory / f"{index}-pid{proc.proc.pid}.log").write_text("".join(proc.raw))
        report.sections.append(("daemon logs", f"{len(started)} daemons' logs: {directory}"))
    return report


@pytest.fixture
def processes() -> Iterator[list[DaemonProcess]]:
    """Daemon processes a test started; whatever is still running is killed afterwards."""
    started: list[DaemonProcess] = []
    yield started
    for proc in started:
        proc.kill()
