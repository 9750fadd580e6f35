"""The container image, built from the Dockerfile as it is and run as the task definition says.

Built with buildah and run with podman (tests/integration/containers.py has the recipe), against
moto's server on the host: the image users deploy is tested, not only linted. CI fails on a
broken ENTRYPOINT, a root user, a file written at run time (the root is read-only and there is
no writable /tmp), a slow stop, or a dependency that drifted from the lock.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ecswatch.dev.simulate import generate
from tests.conftest import Stack, http_get, wait_for
from tests.integration import containers
from tests.integration.containers import HOST_LOOPBACK, sh
from tests.integration.test_cloudformation import template
from tests.test_deploy import ROOT

# A cold first build (debootstrap of the base, then the image) takes ~90 s, more under load.
# One xdist worker runs the module (tests/conftest.py: WHOLE_MODULES): the image is built once.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# One tag per test session, so two sessions on one machine never run each other's build; the
# layers stay cached under it (a warm build takes seconds), the tag is removed afterwards.
TAG = f"localhost/ecswatch:test-{os.getpid()}"
MALFORMED = (
    "this is not json",
    json.dumps({"source": "aws.ecs", "detail-type": "ECS Task State Change"}),
    json.dumps({"source": "aws.ec2", "detail-type": "EC2 Instance State-change", "detail": {}}),
)


def task_container() -> dict[str, Any]:
    """The ecswatch container of the CloudFormation task definition, as the template has it."""
    definition: dict[str, Any] = template()["Resources"]["TaskDefinition"]["Properties"]
    return definition["ContainerDefinitions"][0]


def locked() -> dict[str, str]:
    """name -> version pinned in requirements.lock (names normalised as PyPI does)."""
    pins = re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", (ROOT / "requirements.lock").read_text(), re.M)
    return {normalise(name): version for name, version in pins}


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Built:
    tag: str
    seconds: float
    log: str
    config: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The image, built once for this module from the Dockerfile unchanged."""
    containers.require_tools()
    containers.probe()
    started = time.monotonic()
    result = containers.build(TAG, tmp_path_factory.mktemp("build"))
    built = Built(TAG, time.monotonic() - started, result.stdout + result.stderr)
    built.config = containers.inspect(TAG)
    yield built
    subprocess.run(["podman", "untag", TAG, TAG], capture_output=True, check=False)
    # Each change of the sources leaves the previous build's layers behind: keep a day's worth
    # (warm caches), so the machine's image store does not grow without bound.
    prune = ["podman", "image", "prune", "--force", "--filter", "until=24h"]
    subprocess.run(prune, capture_output=True, check=False, timeout=120)


class Container:
    """One `podman run -d` of the image; logs, exec and stop through podman."""

    def __init__(self, image: str, *options: str, command: tuple[str, ...] = ()) -> None:
        self.name = f"ecswatch-test-{uuid.uuid4().hex[:8]}"
        self.started = time.monotonic()
        sh(
            "podman",
            "run",
            "--detach",
            "--name",
            self.name,
            "--runtime",
            "runc",
            *containers.ulimits(),
            *options,
            image,
            *command,
        )

    def exec(self, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["podman", "exec", self.name, *command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def logs(self) -> list[str]:
        result = sh("podman", "logs", self.name)
        return (result.stdout + result.stderr).splitlines()

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = containers.inspect_container(self.name)["State"]
        return state

    def remove(self) -> None:
        rm = ["podman", "rm", "--force", "--time", "0", self.name]
        subprocess.run(rm, capture_output=True, check=False)


@pytest.fixture
def run_image(image: Built) -> Iterator[Callable[..., Container]]:
    """Start containers of the built image; every one is removed afterwards."""
    started: list[Container] = []

    def run(*options: str, command: tuple[str, ...] = ()) -> Container:
        container = Container(image.tag, *options, command=command)
        started.append(container)
        return container

    yield run
    for container in started:
        container.remove()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def healthz(port: int) -> int:
    """/healthz's status through the published port; 0 while nothing answers behind it
    (podman's port forwarder accepts, then resets, until the daemon listens)."""
    try:
        return http_get(f"http://127.0.0.1:{port}/healthz")[0]
    except ConnectionError:
        return 0


def from_container(url: str) -> str:
    """The same URL as the container sees it: the host's loopback is 10.0.2.2 there."""
    return url.replace("127.0.0.1", HOST_LOOPBACK).replace("localhost", HOST_LOOPBACK)


def stacks(stack: Stack, name: str) -> str:
    """The stack's value for an ECSWATCH_<SECTION>_<KEY> the template fills by reference,
    as the container reaches it."""
    section, _, key = name.removeprefix("ECSWATCH_").lower().partition("_")
    value = getattr(getattr(stack.config, section), key)
    if isinstance(value, bool):
        return str(value).lower()
    return from_container(str(value))


def as_the_task_definition_says(stack: Stack, metrics_port: int, host_port: int) -> list[str]:
    """podman options for the task definition's user, read-only root, stop timeout and
    environment: its literal values as they are, its references aimed at the emulator."""
    spec = task_container()
    environment: dict[str, str] = {}
    for entry in spec["Environment"]:
        name, value = entry["Name"], entry["Value"]
        environment[name] = value if isinstance(value, str) else stacks(stack, name)
    environment |= {
        # What ECS adds outside the task definition: the task role's credentials, and here
        # the emulator's endpoint.
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "ECSWATCH_AWS_ENDPOINT_URL": from_container(stack.emulator.url),
    }
    assert spec["ReadonlyRootFilesystem"] is True
    options = [
        f"--user={spec['User']}",
        "--read-only",
        "--read-only-tmpfs=false",  # ECS gives a read-only root no writable /tmp either
        f"--stop-timeout={spec['StopTimeout']}",
        "--network=slirp4netns:allow_host_loopback=true",
        f"--publish=127.0.0.1:{host_port}:{metrics_port}",
    ]
    return options + [f"--env={name}={value}" for name, value in environment.items()]


def health_command() -> list[str]:
    """The task definition's health command, without its CMD / CMD-SHELL marker."""
    command: list[str] = task_container()["HealthCheck"]["Command"]
    assert command[0] == "CMD"
    return command[1:]


# --- what the image holds ------------------------------------------------------------------

LIST_FILES = """
import importlib.metadata as m, json, os, sys, sysconfig
site = sysconfig.get_paths()["purelib"]
owned = {os.path.normpath(os.path.join(site, str(f))) for d in m.distributions() for f in d.files}
found = [os.path.join(d, f) for d, _, fs in os.walk(site) for f in fs]
print(json.dumps({
    "prefix": sys.prefix,
    "dists": {d.metadata["Name"]: d.version for d in m.distributions()},
    "unowned": sorted(f for f in found if f not in owned),
    "bytecode": sorted(f for f in found if f.endswith(".pyc")),
    "top": sorted(os.listdir("/")),
    "opt": sorted(os.listdir("/opt")),
}))
"""


def test_image_holds_the_package_its_locked_dependencies_and_nothing_else(
    run_image: Callable[..., Container], image: Built
) -> None:
    """Exactly ecswatch and the lock's pins in a venv without pip, no sources, tests or caches."""
    run = ["podman", "run", "--rm", "--runtime", "runc", *containers.ulimits(), "--read-only"]
    result = subprocess.run(
        [*run, "--entrypoint", "python", image.tag, "-c", LIST_FILES],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    found = json.loads(result.stdout)
    assert found["prefix"] == "/opt/ecswatch"
    dists = {normalise(name): version for name, version in found["dists"].items()}
    assert dists.pop("ecswatch")
    assert dists == locked()
    assert not {"pip", "setuptools", "wheel"} & set(dists)
    assert found["unowned"] == []  # every file in site-packages belongs to one of those
    assert found["bytecode"] == []
    assert found["opt"] == ["ecswatch"]  # the builder's /opt/build stayed in the build stage
    assert not {"src", "dist", "tests"} & set(found["top"])


def test_image_configuration_is_what_ecs_expects(image: Built) -> None:
    """Non-root user, exec-form entrypoint, HEALTHCHECK kept (Docker format), JSON logs."""
    config = image.config["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["ecswatch"]
    assert config["Cmd"] == ["run"]
    assert config["StopSignal"] == "SIGTERM"
    assert image.config["Healthcheck"]["Test"][0] == "CMD"  # dropped in OCI format
    assert "ECSWATCH_LOG_FORMAT=json" in config["Env"]
    assert "PYTHONDONTWRITEBYTECODE=1" in config["Env"]


def test_dockerfile_creates_its_user_without_a_warning(image: Built) -> None:
    """The Dockerfile's own useradd step, run on the base, says nothing (no SYS_UID_MAX warning)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    step = next(line for line in text.splitlines() if "useradd" in line and line.startswith("RUN"))
    run = ["podman", "run", "--rm", "--runtime", "runc", *containers.ulimits()]
    result = subprocess.run(
        [*run, containers.BASE_IMAGE, "sh", "-c", step.removeprefix("RUN ") + " && id ecswatch"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith("uid=10001(ecswatch) gid=10001(ecswatch)")


def test_demo_in_the_image_fails_with_one_line(run_image: Callable[..., Container]) -> None:
    """The image carries no emulator (moto): `ecswatch demo` says so in one line."""
    container = run_image("--read-only", command=("demo",))
    code = wait_for(lambda: container.state()["Status"] == "exited" and container.state(), 30)
    assert code["ExitCode"] == 2
    lines = container.logs()
    assert len(lines) == 1, lines
    assert "pip install 'ecswatch[demo]'" in lines[0]


def test_config_error_in_the_image_is_one_json_line(run_image: Callable[..., Container]) -> None:
    """The image logs JSON, and so is a configuration mistake: exit 2, one line, the key named."""
    container = run_image("--read-only", "--env=ECSWATCH_WORKERS_COUNT=lots")
    state = wait_for(lambda: container.state()["Status"] == "exited" and container.state(), 30)
    assert state["ExitCode"] == 2
    lines = container.logs()
    assert len(lines) == 1, lines
    entry = json.loads(lines[0])
    assert entry["event"] == "configuration_error"
    assert "ECSWATCH_WORKERS_COUNT" in entry["error"]


# --- the image at work -----------------------------------------------------------------------


def test_image_runs_as_the_task_definition_says(
    run_image: Callable[..., Container], stack: Stack, image: Built
) -> None:
    """As ECS runs it: PID 1 is the daemon as 10001, healthy, exact items, DLQ, JSON logs, stop."""
    port = free_port()
    container = run_image(*as_the_task_definition_says(stack, 9108, port))
    wait_for(lambda: healthz(port) == 200, timeout=30)
    healthy_after = time.monotonic() - container.started

    pid1 = container.exec("python", "-c", PID1)
    assert pid1.returncode == 0, pid1.stderr
    cmdline, uids = json.loads(pid1.stdout)
    assert cmdline[-2:] == ["ecswatch", "run"] or cmdline[-1:] == ["run"], cmdline
    assert "ecswatch" in " ".join(cmdline)
    assert uids == ["10001"] * 4  # real, effective, saved and filesystem uid

    assert container.exec(*health_command()).returncode == 0  # the task definition's check
    assert sh("podman", "healthcheck", "run", container.name).returncode == 0  # the image's

    stream = generate(tasks=12, copies=2, seed=17)
    stack.send(*stream.bodies(), *MALFORMED)
    wait_for(lambda: stack.queue_counts() == (0, 0), timeout=60)
    assert stack.stored() == stream.truth.final  # every ARN at its highest version
    assert sorted(m["Body"] for m in stack.dead_letters()) == sorted(MALFORMED)

    lines = [line for line in container.logs() if line.strip()]
    assert lines
    logged = [json.loads(line) for line in lines]  # every line is JSON
    assert {"ecswatch_starting"} <= {entry["event"] for entry in logged}

    # Idle now, with the fetchers in a 20 s long poll: a stop well inside an engine's default
    # 10 s, exit code 0 (not 137 from SIGKILL).
    rss = container.exec("python", "-c", RSS).stdout.strip()
    stopped = time.monotonic()
    stop = subprocess.run(
        ["podman", "stop", "-t", "10", container.name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    stop_seconds = time.monotonic() - stopped
    print(
        f"\nimage: build {image.seconds:.1f} s, healthy {healthy_after:.1f} s after start, "
        f"PID 1 RSS {rss}, idle stop {stop_seconds:.1f} s"
    )
    assert stop.returncode == 0, stop.stderr
    assert container.state()["ExitCode"] == 0  # not 137: it was not SIGKILLed


RSS = "print(next(l.split(None, 1)[1] for l in open('/proc/1/status') if l.startswith('VmRSS')))"
PID1 = """
import json
cmdline = open("/proc/1/cmdline").read().split("\\0")[:-1]
uids = next(l.split()[1:] for l in open("/proc/1/status") if l.startswith("Uid:"))
print(json.dumps([cmdline, uids]))
"""


def test_image_healthcheck_reads_the_metrics_port_from_the_config_file(
    run_image: Callable[..., Container], stack: Stack, tmp_path: Path
) -> None:
    """With [metrics] port in $ECSWATCH_CONFIG (no environment override), HEALTHCHECK passes."""
    config = tmp_path / "ecswatch.toml"
    config.write_text("[metrics]\nport = 9200\n")
    config.chmod(0o644)
    port = free_port()
    options = as_the_task_definition_says(stack, 9200, port)
    container = run_image(
        *options,
        f"--volume={config}:/etc/ecswatch/ecswatch.toml:ro",
        "--env=ECSWATCH_CONFIG=/etc/ecswatch/ecswatch.toml",
    )
    wait_for(lambda: healthz(port) == 200, timeout=30)
    check = subprocess.run(
        ["podman", "healthcheck", "run", container.name],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_simulate_in_the_image_publishes_through_eventbridge(
    run_image: Callable[..., Container], stack: Stack
) -> None:
    """compose's `simulate` service works: the simulator ships in the image and reaches the bus."""
    container = run_image(
        "--read-only",
        "--network=slirp4netns:allow_host_loopback=true",
        f"--env=ECSWATCH_AWS_ENDPOINT_URL={from_container(stack.emulator.url)}",
        f"--env=ECSWATCH_AWS_REGION={stack.config.aws.region}",
        # Redeliveries go straight to the queue (they keep their event id), as compose sets it.
        f"--env=ECSWATCH_SQS_QUEUE_URL={from_container(stack.resources.queue_url)}",
        "--env=AWS_ACCESS_KEY_ID=testing",
        "--env=AWS_SECRET_ACCESS_KEY=testing",
        command=("simulate", "--events", "12", "--rate", "100"),
    )
    state = wait_for(lambda: container.state()["Status"] == "exited" and container.state(), 60)
    assert state["ExitCode"] == 0, container.logs()
    assert stack.queue_counts() == (12, 0)
