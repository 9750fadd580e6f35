"""A real Prometheus scrapes a running ecswatch and loads its alert rules."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from ecswatch.dev.simulate import generate
from tests.conftest import Running, Stack, http_get, wait_for
from tests.test_deploy import ROOT, tool


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    binary = tool("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(target_port: int) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: [{ROOT / 'deploy/prometheus/alerts.yml'}]\n"
            "scrape_configs:\n"
            "  - job_name: ecswatch\n"
            f"    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
        )
        port = free_port()
        with (tmp_path / "prometheus.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}",
                     f"--web.listen-address=127.0.0.1:{port}"],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: http_get(f"{url}/-/ready")[0] == 200, timeout=30)
        return url

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


COUNTED = {"TaskFailedToStart", "EssentialContainerExited", ""}


def headline_sum() -> str:
    """ECSServiceTasksFailingToStart's expression without its `>= 3`."""
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    (expr,) = (
        rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "ECSServiceTasksFailingToStart"
    )
    return str(expr).strip().removesuffix(">= 3").strip()


def query(url: str, expr: str) -> float | None:
    status, body = http_get(f"{url}/api/v1/query?query={urllib.parse.quote(expr)}")
    assert status == 200, body
    result = json.loads(body)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def test_prometheus_scrapes_ecswatch_and_sees_failed_starts(
    stack: Stack,
    start_daemon: Callable[..., Running],
    prometheus: Callable[[int], str],
) -> None:
    running = start_daemon()
    url = prometheus(running.daemon.http.port)
    stream = generate(tasks=12, copies=2, seed=2, container_instances=1)
    stack.send(*stream.bodies())
    expected = float(sum(stream.truth.failed_starts.values()))
    assert expected > 0
    wait_for(
        lambda: query(url, "sum(ecswatch_tasks_pending_to_stopped_total)") == expected,
        timeout=60,
    )
    assert query(url, 'up{job="ecswatch"}') == 1.0
    # The headline rule reads each series' `_created` birth time: a real scrape must carry it,
    # and the rule's sum (without its threshold) must count every failed start it is for.
    assert query(url, "count(ecswatch_tasks_pending_to_stopped_created)") == query(
        url, "count(ecswatch_tasks_pending_to_stopped_total)"
    )
    counted = sum(
        n for (_, _, stop_code), n in stream.truth.failed_starts.items() if stop_code in COUNTED
    )
    assert counted > 0
    reading = query(url, f"sum({headline_sum()})")
    assert reading is not None
    assert counted <= reading < counted + 1  # increase() may extrapolate past a young series
    assert query(url, 'ecswatch_build_info{job="ecswatch"}') == 1.0
    status, body = http_get(f"{url}/api/v1/rules")
    assert status == 200
    rules = [r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert "ECSServiceTasksFailingToStart" in rules
    defined = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    assert len(rules) == sum(len(group["rules"]) for group in defined["groups"])
