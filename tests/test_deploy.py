"""The shipping files, checked without a Docker engine: by the real linters and by reading them.

hadolint, cfn-lint and the compose-spec schema come with the dev extra; promtool comes from
Debian's `prometheus` package, which .ci/run installs (ECSWATCH_REQUIRE_TOOLS=1 there turns a
missing tool into a failure instead of a skip).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from ecswatch.config import load_config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(BIN))
    if found is None:
        if os.environ.get("ECSWATCH_REQUIRE_TOOLS"):
            pytest.fail(f"{name} is required here (ECSWATCH_REQUIRE_TOOLS) but not installed")
        pytest.skip(f"{name} not installed (CI installs it)")
    return found


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# --- Dockerfile -------------------------------------------------------------------------------


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def test_dockerfile_passes_hadolint() -> None:
    result = run(tool("hadolint"), "--failure-threshold", "info", "Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_pinned_and_non_root() -> None:
    text = dockerfile()
    assert re.search(r"^ARG PYTHON_IMAGE=python:\d+\.\d+\.\d+-slim-\w+$", text, re.M)
    assert len(re.findall(r"^FROM ", text, re.M)) == 2
    assert "COPY --from=build /opt/ecswatch /opt/ecswatch" in text
    users = re.findall(r"^USER (\S+)", text, re.M)
    assert users and not users[-1].startswith(("root", "0"))
    assert re.search(r'^ENTRYPOINT \["ecswatch"\]$', text, re.M)  # exec form: SIGTERM reaches us
    assert re.search(r'^CMD \["run"\]$', text, re.M)
    assert "curl" not in text.split("HEALTHCHECK", 1)[1]


def test_dockerfile_installs_only_from_the_locks_into_a_venv_without_pip() -> None:
    """No BuildKit frontend to pull; hash-checked locks; pip and setuptools stay in the builder."""
    text = dockerfile()
    assert not re.search(r"^#\s*syntax=", text, re.M | re.I)
    assert "python -m venv --without-pip /opt/ecswatch" in text
    installs = re.findall(r"pip (?:--python \S+ )?install\b[^&\n]*", text.replace("\\\n", " "))
    assert installs
    for install in installs:
        assert "--require-hashes" in install or "--no-index" in install, install
    assert not re.search(r"useradd[^\n]*--system", text)


def test_dockerignore_sends_only_the_package() -> None:
    text = (ROOT / ".dockerignore").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert lines[0] == "*"
    assert {"!pyproject.toml", "!README.md", "!ecswatch/"} <= set(lines)
    assert {"!requirements.lock", "!requirements-build.lock"} <= set(lines)


def healthcheck_command() -> list[str]:
    text = dockerfile().replace("\\\n", " ")
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*\])$", text, re.M)
    assert match, "no exec-form HEALTHCHECK"
    command: list[str] = json.loads(match.group(1))
    return command


def test_dockerfile_healthcheck_command_really_checks_healthz(start_daemon: Any) -> None:
    running = start_daemon()
    command = healthcheck_command()
    assert command[0] == "python"
    env = {**os.environ, "ECSWATCH_METRICS_PORT": str(running.daemon.http.port)}
    ok = subprocess.run([sys.executable, *command[1:]], env=env, timeout=10, check=False)
    assert ok.returncode == 0
    running.daemon.http.stop()
    down = subprocess.run(
        [sys.executable, *command[1:]], env=env, capture_output=True, timeout=10, check=False
    )
    assert down.returncode != 0


# --- docker-compose.yml -----------------------------------------------------------------------


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_matches_the_compose_spec() -> None:
    check = tool("check-jsonschema")
    result = run(check, "--builtin-schema", "vendor.compose-spec", "docker-compose.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_images_are_pinned_and_mounted_files_exist() -> None:
    for name, service in compose()["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), name
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name}: {source}"


def test_compose_starts_things_in_order_and_runs_two_replicas() -> None:
    services = compose()["services"]
    assert set(services) == {"localstack", "init", "ecswatch", "simulate", "prometheus", "grafana"}
    assert set(services["localstack"]["environment"]["SERVICES"].split(",")) == {
        "sqs",
        "dynamodb",
        "events",
    }
    assert "healthcheck" in services["localstack"]
    assert services["init"]["command"] == ["bootstrap"]
    assert services["init"]["depends_on"]["localstack"]["condition"] == "service_healthy"
    assert services["ecswatch"]["depends_on"]["init"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["ecswatch"]["deploy"]["replicas"] == 2
    assert services["simulate"]["depends_on"]["ecswatch"]["condition"] == "service_healthy"
    assert services["simulate"]["command"][0] == "simulate"
    assert services["prometheus"]["depends_on"]["ecswatch"]["condition"] == "service_healthy"
    # Longer than the daemon's shutdown_timeout, so `docker compose stop` lets it drain.
    assert int(services["ecswatch"]["stop_grace_period"].rstrip("s")) > 25


def test_compose_configuration_is_valid_for_the_daemon() -> None:
    service = compose()["services"]["ecswatch"]
    environment = {k: str(v) for k, v in service["environment"].items()}
    host_file = next(v.split(":")[0] for v in service["volumes"] if "ecswatch.toml" in v)
    environment["ECSWATCH_CONFIG"] = str(ROOT / host_file)
    config = load_config(None, environment)
    assert config.aws.endpoint_url == "http://localstack:4566"
    assert config.sqs.queue_url.endswith("/ecswatch-events")
    assert config.sqs.wait_time_seconds < config.workers.shutdown_timeout


# --- Prometheus, alerts, Grafana ---------------------------------------------------------------


def test_prometheus_config_and_rules_pass_promtool() -> None:
    promtool = tool("promtool")
    prometheus_dir = ROOT / "deploy" / "prometheus"
    for args in (("check", "config", "prometheus.yml"), ("check", "rules", "alerts.yml")):
        result = run(promtool, *args, cwd=prometheus_dir)
        assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = run(
        tool("promtool"), "test", "rules", "alerts.test.yml", cwd=ROOT / "deploy/prometheus"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_rule_has_a_unit_test() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    names = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((ROOT / "deploy/prometheus/alerts.test.yml").read_text())
    tested = {case["alertname"] for t in tests["tests"] for case in t["alert_rule_test"]}
    assert names == tested


def test_grafana_dashboard_queries_only_metrics_ecswatch_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/dashboards/ecswatch.json").read_text())
    sources = "".join(path.read_text() for path in (ROOT / "ecswatch").rglob("*.py"))
    exported = set(re.findall(r'"(ecswatch_\w+)"', sources))
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"ecswatch_\w+", target["expr"])
    }
    assert used
    for name in used:
        base = re.sub(r"_(total|bucket|count|sum|created)$", "", name)
        assert base in exported, name
    assert dashboard["uid"] == "ecswatch"


# --- the image's dependency locks ------------------------------------------------------------


def pins(lock: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of every requirement in a pip-compile lock file."""
    text = (ROOT / lock).read_text().replace("\\\n", " ")
    found: dict[str, tuple[str, list[str]]] = {}
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==(\S+)(.*)$", line)
        if match:
            name, version, rest = match.groups()
            found[canonicalize_name(name)] = (version, re.findall(r"--hash=sha256:(\w+)", rest))
    return found


@pytest.mark.parametrize(
    ("lock", "key"),
    [("requirements.lock", "project.dependencies"), ("requirements-build.lock", "build.requires")],
)
def test_image_locks_pin_every_declared_requirement_with_hashes(lock: str, key: str) -> None:
    """A dependency added or a range moved without `make lock` fails here, before any build."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = (
        project["project"]["dependencies"]
        if key == "project.dependencies"
        else project["build-system"]["requires"]
    )
    locked = pins(lock)
    for text in declared:
        requirement = Requirement(text)
        version, _ = locked[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), f"{lock}: {requirement} vs {version}"
    assert all(hashes for _, hashes in locked.values()), f"{lock}: a pin without --hash"


def test_compose_services_run_the_one_image_and_only_the_daemon_is_health_checked() -> None:
    """init, ecswatch and simulate are the same build; only the daemon keeps its HEALTHCHECK."""
    services = compose()["services"]
    ours = {name: services[name] for name in ("init", "ecswatch", "simulate")}
    assert {(s["image"], s["build"]) for s in ours.values()} == {("ecswatch:local", ".")}
    assert "healthcheck" not in ours["ecswatch"]  # the image's own
    assert ours["init"]["healthcheck"] == {"disable": True}
    assert ours["simulate"]["healthcheck"] == {"disable": True}
