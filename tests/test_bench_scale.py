"""The scale benchmark runs end to end on a tiny organization (figures for bench/, not asserts)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_scale_bench_quick_run_measures_every_figure(tmp_path: Path) -> None:
    """bench/scale.py --quick seeds an organization, runs a replica, a pass, report and task."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "scale.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    small, row = json.loads((tmp_path / "scale.json").read_text())["rows"]
    assert small["services"] < row["services"]
    replica = row["replica"]
    assert replica["metrics_bytes"] > 0 and replica["series"] > 0 and replica["rss_mib"] > 0
    assert row["gauges_read"]["items"] >= row["services"]
    for done in row["passes"]:
        assert done["result"] == "success" and done["tasks_listed"] > 0
    for command in ("report", "task_by_arn", "task_by_id"):
        assert row[command]["seconds"] > 0 and row[command]["peak_rss_mib"] > 0
    assert "| /metrics size |" in result.stdout
    assert "What each service adds to /metrics" in result.stdout
