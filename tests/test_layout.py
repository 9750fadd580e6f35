"""The daemon's sub-packages import only what their own docstring's "May import:" line allows.

The docstring is the rule a newcomer reads; this test makes it the rule the code obeys, so an
arrow that runs the wrong way (e.g. state/ reaching up into reconcile/) fails the suite.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ecswatch"
DAEMON = PACKAGE / "daemon"
SUBPACKAGES = sorted(p.parent.name for p in DAEMON.glob("*/__init__.py"))
MAY_IMPORT = re.compile(r"May import:\s*(.*?)\.(?:\s|$)", re.DOTALL)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def ecswatch_imports(path: Path) -> set[str]:
    """Every ecswatch module a file imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(n for n in [node.module, *names] if n.startswith("ecswatch"))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ecswatch"))
    return found


def allowed_prefixes(subpackage: str) -> list[str]:
    """The "May import:" line of a sub-package's docstring, as module prefixes."""
    doc = ast.get_docstring(ast.parse((DAEMON / subpackage / "__init__.py").read_text())) or ""
    match = MAY_IMPORT.search(doc)
    assert match, f"daemon/{subpackage}/__init__.py has no 'May import:' line"
    # Itself, the frozen config (every part reads it) and the package root (__version__).
    prefixes = [f"ecswatch.daemon.{subpackage}", "ecswatch.config", "ecswatch"]
    for word in re.split(r"[,\s]+", match.group(1)):
        name = word.strip().removeprefix("ecswatch.")
        if not name:
            continue
        top = name.split(".")[0]
        prefixes.append(f"ecswatch.daemon.{name}" if top in SUBPACKAGES else f"ecswatch.{name}")
    return prefixes


def permitted(target: str, prefixes: list[str]) -> bool:
    # "ecswatch" alone admits the package root (e.g. `from ecswatch import __version__`).
    return any(
        target == p or (p != "ecswatch" and target.startswith(p + ".")) for p in prefixes
    ) or target in {"ecswatch", "ecswatch.__version__"}


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_a_daemon_subpackage_imports_only_what_its_docstring_allows(subpackage: str) -> None:
    """daemon/<part>/__init__.py says what the part may import; every module in it obeys."""
    prefixes = allowed_prefixes(subpackage)
    wrong = {
        f"{module_name(path)} -> {target}"
        for path in (DAEMON / subpackage).rglob("*.py")
        for target in ecswatch_imports(path)
        if not permitted(target, prefixes)
    }
    assert not wrong, sorted(wrong)


def test_the_domain_is_pure_and_nothing_at_run_time_imports_dev() -> None:
    """domain/ imports nothing else of ecswatch; only the CLI's demo path reaches dev/."""
    wrong = set()
    for path in PACKAGE.rglob("*.py"):
        name = module_name(path)
        for target in ecswatch_imports(path):
            if name.startswith("ecswatch.domain") and not target.startswith("ecswatch.domain"):
                wrong.add(f"{name} -> {target}")
            if target.startswith("ecswatch.dev") and not name.startswith(
                ("ecswatch.dev", "ecswatch.cli")
            ):
                wrong.add(f"{name} -> {target}")
    assert not wrong, sorted(wrong)
