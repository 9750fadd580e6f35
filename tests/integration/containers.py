"""Building and running ecswatch's image without a Docker engine: Debian's buildah and podman.

The recipe (docs/deploying/image.md): the registry's Python base cannot be
pulled here, so a debootstrapped bookworm with Debian's Python 3.11 stands in for it through the
Dockerfile's PYTHON_IMAGE build arg (its tarball cached, a cold debootstrap takes ~40 s); buildah
builds with chroot isolation in Docker format (OCI drops HEALTHCHECK); podman runs with runc and
slirp4netns, the host's loopback reachable from the container at 10.0.2.2.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from tests.test_deploy import ROOT, tool

BASE_IMAGE = "localhost/ecswatch-pybase:bookworm"
HOST_LOOPBACK = "10.0.2.2"  # slirp4netns with allow_host_loopback: the host's 127.0.0.1
TOOLS = ("buildah", "podman", "runc", "conmon", "slirp4netns", "debootstrap")
BASE_PACKAGES = "python3,python3-venv,python-is-python3,ca-certificates"
# What a slim base does not need at run time; trimmed from the stand-in so its size is close.
TRIMMED = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/cache/apt")
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


# Read at import: the tests' autouse fixture clears every ECSWATCH_* variable.
CACHE = os.environ.get("ECSWATCH_TEST_CACHE") or str(Path.home() / ".cache" / "ecswatch-test")


def cache_dir() -> Path:
    """Where the base tarball is kept between runs ($ECSWATCH_TEST_CACHE to move it)."""
    path = Path(CACHE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def require_tools() -> dict[str, str]:
    """Every tool's path; skips (or fails under ECSWATCH_REQUIRE_TOOLS) if one is missing."""
    return {name: tool(name) for name in TOOLS}


def sh(*args: str, timeout: float = 300, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run a command; raise with its output if it fails."""
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}"
            f"\n{result.stderr[-3000:]}"
        )
    return result


def apt_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 sources, else sources.list)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    for line in Path("/etc/apt/sources.list").read_text().splitlines():
        if line.startswith("deb ") and "security" not in line:
            return line.split()[1]
    return "http://deb.debian.org/debian"


def ensure_base_image() -> str:
    """The stand-in Python base image, imported from the cached tarball (made if absent)."""
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return BASE_IMAGE
    tarball = cache_dir() / "pybase-bookworm.tar"
    if not tarball.exists():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as work:
            root = Path(work) / "root"
            sh(
                "debootstrap",
                "--variant=minbase",
                f"--include={BASE_PACKAGES}",
                "bookworm",
                str(root),
                apt_mirror(),
                timeout=600,
            )
            for trimmed in TRIMMED:
                shutil.rmtree(root / trimmed, ignore_errors=True)
            for lists in (root / "var/lib/apt/lists").glob("*"):
                if lists.is_file():
                    lists.unlink()
            partial = Path(work) / tarball.name  # renamed into place whole: two runs may race
            sh("tar", "-C", str(root), "-cf", str(partial), ".")
            partial.rename(tarball)
    sh(
        "podman",
        "import",
        "--change",
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        str(tarball),
        BASE_IMAGE,
    )
    return BASE_IMAGE


def pip_conf(directory: Path) -> Path:
    """A pip.conf for the build's RUN steps: the index and certificate authority pip uses here."""
    lines = ["[global]", f"cert = {CA_BUNDLE}"]
    index = os.environ.get("PIP_INDEX_URL") or _pip_config("global.index-url")
    if index:
        lines.append(f"index-url = {index}")
    path = directory / "pip.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pip_config(key: str) -> str:
    result = subprocess.run(
        ["python3", "-m", "pip", "config", "get", key], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def build(tag: str, work: Path) -> subprocess.CompletedProcess[str]:
    """`buildah bud` of the Dockerfile as it is, on the stand-in base; the CA and pip.conf are
    mounted for RUN steps only, so nothing of them lands in the image."""
    mounts = ["-v", f"{pip_conf(work)}:/etc/pip.conf:ro"]
    if CA_BUNDLE.exists():
        mounts += ["-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro"]
    return sh(
        "buildah",
        "bud",
        "--format",
        "docker",
        "--pull=never",
        "--network",
        "host",
        "--layers",
        "--build-arg",
        f"PYTHON_IMAGE={ensure_base_image()}",
        *mounts,
        "-t",
        tag,
        "-f",
        str(ROOT / "Dockerfile"),
        str(ROOT),
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
        timeout=600,
    )


def ulimits() -> list[str]:
    """podman's default rlimits exceed what this sandbox may set: ask for less (runc is
    refused some values below the shell's own hard limits too, hence the cap)."""
    nofile = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 4096)
    nproc = min(resource.getrlimit(resource.RLIMIT_NPROC)[1], 4096)
    return [f"--ulimit=nofile={nofile}:{nofile}", f"--ulimit=nproc={nproc}:{nproc}"]


def inspect(image: str) -> dict[str, Any]:
    """The image's Docker-format configuration (User, Entrypoint, Healthcheck, Env, ...)."""
    data: list[dict[str, Any]] = json.loads(sh("podman", "image", "inspect", image).stdout)
    return data[0]


def inspect_container(name: str) -> dict[str, Any]:
    """A container's state and configuration, as `podman inspect` gives them."""
    data: list[dict[str, Any]] = json.loads(sh("podman", "container", "inspect", name).stdout)
    return data[0]


def probe() -> None:
    """Skip (fail under ECSWATCH_REQUIRE_TOOLS) where podman is installed but cannot run."""
    result = subprocess.run(
        ["podman", "info", "--format", "{{.Host.OCIRuntime.Name}}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        reason = f"podman cannot run here: {result.stderr.strip()[-300:]}"
        if os.environ.get("ECSWATCH_REQUIRE_TOOLS"):
            pytest.fail(reason)
        pytest.skip(reason)
