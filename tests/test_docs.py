"""The documentation site builds strictly, with its reference pages written from the code.

`mkdocs build --strict` fails on a broken link or anchor, a page missing from the nav, and a
page naming a metric, alert, config key or command the code does not define
(docs/hooks/reference.py); the reference pages are generated at build time, so none is stale.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import yaml

from ecswatch.config import SECTIONS
from ecswatch.domain.stops import Cause

ROOT = Path(__file__).resolve().parent.parent


def load_hooks() -> tuple[ModuleType, ModuleType, ModuleType]:
    """docs/hooks' modules, imported as mkdocs does (their folder on the path)."""
    sys.path.insert(0, str(ROOT / "docs" / "hooks"))
    try:
        load = importlib.import_module
        return load("reference"), load("sources"), load("names")
    finally:
        sys.path.pop(0)


hook, sources, names = load_hooks()


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    """No broken link, anchor, unlisted page or name the code lacks: the strict build passes."""
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    for page in ("metrics", "configuration", "cli", "alerts"):
        html = (tmp_path / "reference" / page / "index.html").read_text()
        assert "generated:" not in html, page


def test_reference_pages_hold_every_metric_key_command_and_alert() -> None:
    """Each metric, key, command, alert and stop cause the code defines is on its page."""
    pages = {name: generate() for name, generate in hook.GENERATORS.items()}
    for metric in sources.metrics():
        assert f"`{metric.name}`" in pages["metrics"]
    for section, cls in SECTIONS.items():
        for field in dataclasses.fields(cls):
            assert f"`{section}.{field.name}`" in pages["config"]
    for command in sources.commands():
        assert f"`ecswatch {command}`" in pages["cli"]
    groups = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"] if "alert" in r):
        assert f"`{rule['alert']}`" in pages["alerts"]
    for cause in Cause:
        assert f"`{cause}`" in pages["stop_causes"]


def test_prose_naming_what_the_code_lacks_is_caught() -> None:
    """A renamed metric or label, alert, key, command, file or test left in prose is reported."""
    prose = (
        '`ecswatch_events_total{outcome="expired"}`, `ECSWatchPaused`, `sqs.queue_url`, '
        "`ecswatch report`, `events.parse_message`, `ECSServiceState`"
    )
    assert names.stale_names(prose) == []
    wrong = "`ecswatch_nope_total`, `ECSWatchNope`, `sqs.nope`, `ecswatch nope`"
    assert len(names.stale_names(wrong)) == 4
    labels = '`ecswatch_events_total{outcome="x"}`, `ecswatch_paused{reason="a"|"b"}`'
    assert names.stale_names(labels) == []
    assert len(names.stale_names('`ecswatch_events_total{result="x"}`')) == 1
    files = "`tests/test_docs.py`, `test_docs.py::test_prose_naming_what_the_code_lacks_is_caught`"
    assert names.stale_names(files) == []
    files += ", `pause.py`, `daemon/reconcile/lease.py`, `ecswatch/dev/`, `alerts.yml`"
    assert names.stale_names(files) == []
    moved = "`ecswatch/daemon/worker.py`, `test_docs.py::test_gone`, `test_gone.py`, `gone.py`"
    assert len(names.stale_names(moved)) == 4


def test_the_readme_names_only_what_the_code_defines() -> None:
    """The landing page is held to the same names as the site."""
    assert names.stale_names((ROOT / "README.md").read_text()) == []
