"""The metrics reference lists exactly the families a running daemon exports."""

from __future__ import annotations

from ecswatch.daemon.app import Daemon
from tests.conftest import Stack
from tests.test_docs import sources


def test_the_metrics_reference_matches_a_running_daemons_registry(stack: Stack) -> None:
    """Names, types and label names of every family a started daemon registers are documented."""
    registry = sources.Recording()
    daemon = Daemon(stack.config, registry)  # reconciliation off: its metrics still register
    daemon.start()
    try:
        running = {(m.name, m.type, m.labels) for m in sources.catalogue(registry)}
    finally:
        daemon.stop()
    documented = {(m.name, m.type, m.labels) for m in sources.metrics()}
    missing, extra = sorted(running - documented), sorted(documented - running)
    assert not missing and not extra, (
        "register the daemon's collectors in docs/hooks/sources.py daemon_collectors as "
        f"daemon/app.py does; undocumented: {missing}, not exported: {extra}"
    )
