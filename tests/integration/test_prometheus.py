"""A real Prometheus scrapes a running ecswatch and loads its alert rules."""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import urllib.parse
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from ecswatch.dev.simulate import generate
from tests.commands.stopped import EVENTS, task_item
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


def rule_sum(name: str, threshold: str) -> str:
    """A rule's expression without its threshold: what it counts per group."""
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    (expr,) = (
        rule["expr"]
        for group in rules["groups"]
        for rule in group["rules"]
        if rule.get("alert") == name
    )
    return str(expr).strip().removesuffix(threshold).strip()


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
    reading = query(url, f"sum({rule_sum('ECSServiceTasksFailingToStart', '>= 3')})")
    assert reading is not None
    assert counted <= reading < counted + 1  # increase() may extrapolate past a young series
    assert query(url, 'ecswatch_build_info{job="ecswatch"}') == 1.0
    status, body = http_get(f"{url}/api/v1/rules")
    assert status == 200
    rules = [r["name"] for g in json.loads(body)["data"]["groups"] for r in g["rules"]]
    assert "ECSServiceTasksFailingToStart" in rules
    defined = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    assert len(rules) == sum(len(group["rules"]) for group in defined["groups"])


def test_the_task_death_rules_read_a_real_scrape_of_oom_kills(
    stack: Stack,
    start_daemon: Callable[..., Running],
    prometheus: Callable[[int], str],
) -> None:
    """Three OOM kills of one service, each 7 min after starting, through the daemon: the
    crash-loop rule finds them in the lifetime histogram's le="600.0" bucket (as client_python
    writes it) beside its `_created` series, the OOM rule counts the container three times, and
    every dashboard query runs."""
    running = start_daemon()
    url = prometheus(running.daemon.http.port)
    now = datetime.now(UTC)
    envelopes = []
    for i in range(3):
        detail = task_item("oom_kill", task_id=f"{i:032x}", stopped_at=now - timedelta(minutes=i))
        envelope = copy.deepcopy(EVENTS["oom_kill"]) | {"id": f"oom-{i}", "detail": detail}
        envelopes.append(envelope | {"time": detail["stoppedAt"], "resources": [detail["taskArn"]]})
    stack.send_events(envelopes)
    wait_for(lambda: query(url, "sum(ecswatch_container_oom_kills_total)") == 3.0, timeout=60)
    assert query(url, f"sum({rule_sum('ECSServiceCrashLooping', '>= 3')})") == 3.0
    assert query(url, f"sum({rule_sum('ECSContainerOOMKilled', '> 0')})") == 3.0
    # Every dashboard query is valid PromQL on the real server, the new panels included.
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/ecswatch.json").read_text())
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace("$account", ".*").replace("$region", ".*")
            status, body = http_get(f"{url}/api/v1/query?query={urllib.parse.quote(expr)}")
            assert status == 200, (panel["title"], body)
            if panel["title"].startswith(("Crash loops", "OOM kills")):
                assert json.loads(body)["data"]["result"], panel["title"]
