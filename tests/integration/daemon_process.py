"""`ecswatch run` as users run it: a subprocess, its JSON log lines, its HTTP port."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import http_get, wait_for

#: ECSWATCH_TEST_DAEMON_LOG_LEVEL=DEBUG: every daemon a test starts logs per message (read at
#: import: the tests' environment is cleared of ECSWATCH_* variables)
LOG_LEVEL = os.environ.get("ECSWATCH_TEST_DAEMON_LOG_LEVEL", "")


class DaemonProcess:
    def __init__(self, env: dict[str, str], *args: str) -> None:
        if LOG_LEVEL and "ECSWATCH_LOG_LEVEL" not in env:
            env = {**env, "ECSWATCH_LOG_LEVEL": LOG_LEVEL}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ecswatch", "run", *args],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.logs: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with contextlib.suppress(ValueError):
                self.logs.append(json.loads(line))

    def events(self, name: str) -> list[dict[str, Any]]:
        return [entry for entry in list(self.logs) if entry.get("event") == name]

    @property
    def port(self) -> int:
        started = wait_for(lambda: self.events("ecswatch_starting"), timeout=30)
        return int(started[0]["metrics_port"])

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        status, text = http_get(f"http://127.0.0.1:{self.port}/metrics")
        assert status == 200
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        return self.metrics().get((name, tuple(sorted(labels.items()))), 0.0)

    def total(self, name: str, **match: str) -> float:
        return sum(
            value
            for (sample, labels), value in self.metrics().items()
            if sample == name and all(dict(labels).get(k) == v for k, v in match.items())
        )

    def terminate(self, timeout: float = 30) -> tuple[int, float]:
        """SIGTERM; returns (exit code, seconds it took to exit)."""
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL if still running; closes the pipe either way."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()

    def wait(self, timeout: float = 30) -> int:
        return self.proc.wait(timeout=timeout)

    def stderr_text(self) -> str:
        self._reader.join(timeout=5)
        return "".join(self.raw)


def run_with_a_sigkill(
    stack: Any,
    deliveries: list[str],
    processes: list[DaemonProcess],
    *,
    replicas: int,
    kill_after: int,
) -> tuple[DaemonProcess, list[DaemonProcess]]:
    """The chaos run: `replicas` daemons (3 workers, 5 s visibility, DEBUG so the victim's
    per-message lines say what it counted) take the first half; one is SIGKILLed after
    `kill_after` messages and replaced; the rest is sent; returns (victim, survivors) once the
    queue is empty."""
    env = stack.daemon_environment(
        ECSWATCH_WORKERS_COUNT="3", ECSWATCH_SQS_VISIBILITY_TIMEOUT="5", ECSWATCH_LOG_LEVEL="DEBUG"
    )
    started = [DaemonProcess(env) for _ in range(replicas)]
    processes.extend(started)
    for replica in started:
        wait_for(lambda r=replica: http_get(f"http://127.0.0.1:{r.port}/readyz")[0] == 200)
    half = len(deliveries) // 2
    stack.send(*deliveries[:half])
    victim = started[0]
    wait_for(lambda: len(victim.events("message_processed")) >= kill_after, timeout=60)
    victim.proc.send_signal(signal.SIGKILL)
    victim.wait()
    replacement = DaemonProcess(env)
    processes.append(replacement)
    stack.send(*deliveries[half:])
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=240)
    return victim, [*started[1:], replacement]
