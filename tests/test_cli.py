"""The first minute: what a newcomer sees from `--version`, `--help`, `demo` and the wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import ecswatch

ROOT = Path(__file__).resolve().parent.parent

# Run the CLI in a fresh interpreter where `import moto` fails as on a plain `pip install ecswatch`.
WITHOUT_MOTO = """
import importlib.abc, sys

class NoMoto(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "moto" or name.startswith("moto."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoMoto())
from ecswatch.cli import main
sys.exit(main(sys.argv[1:]))
"""


def ecswatch_cli(*args: str, without_moto: bool = False) -> subprocess.CompletedProcess[str]:
    code = (
        WITHOUT_MOTO if without_moto else "from ecswatch.cli import main; raise SystemExit(main())"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_demo_without_moto_prints_what_to_install_and_exits_2() -> None:
    """A plain install's `ecswatch demo` is one line naming the extra, exit 2, no traceback."""
    result = ecswatch_cli("demo", without_moto=True)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'ecswatch[demo]'" in lines[0]
    assert "moto" in lines[0]


def test_version_prints_the_package_version() -> None:
    """`ecswatch --version` says which release runs."""
    result = ecswatch_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"ecswatch {ecswatch.__version__}"


def test_run_help_names_the_config_file_and_the_env_prefix() -> None:
    """`ecswatch run --help` tells where configuration comes from."""
    result = ecswatch_cli("run", "--help")
    assert result.returncode == 0
    assert "--config PATH" in result.stdout
    assert "$ECSWATCH_CONFIG" in result.stdout
    assert "ECSWATCH_<SECTION>_<KEY>" in result.stdout


def test_wheel_ships_every_subpackage_py_typed_and_the_spdx_license(tmp_path: Path) -> None:
    """The built wheel holds the whole package tree and current licence metadata."""
    pytest.importorskip("hatchling")
    build = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "--wheel-dir", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("ecswatch-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    sources = {
        p.relative_to(ROOT).as_posix()
        for p in (ROOT / "ecswatch").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert "ecswatch/py.typed" in sources
    assert sources <= names
    metadata = zipfile.ZipFile(wheel).read(f"ecswatch-{ecswatch.__version__}.dist-info/METADATA")
    assert b"License-Expression: Apache-2.0" in metadata
