"""The benchmark harness runs end to end on a tiny load (figures are for bench/, not asserts)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from compare import find_fastaws  # noqa: E402

FASTAWS = pytest.mark.skipif(
    not (shutil.which("node") and find_fastaws()), reason="needs node and shared/tools/fastaws.js"
)


@pytest.mark.slow
@pytest.mark.parametrize("endpoint", ["moto", pytest.param("fastaws", marks=FASTAWS)])
def test_compare_harness_smoke_run_produces_every_contender(tmp_path: Path, endpoint: str) -> None:
    """bench/compare.py --quick runs every contender to the end on either emulator."""
    command = [sys.executable, str(ROOT / "bench" / "compare.py"), "--quick"]
    result = subprocess.run(
        [*command, "--endpoint", endpoint, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    rows = json.loads((tmp_path / "compare.json").read_text())
    contenders = {row["contender"] for row in rows}
    assert {"emulator ceiling", "SQS ceiling", "seed-style", "floor", "ecswatch"} <= contenders
    for row in rows:
        assert row["events"] > 0
        assert row["events_per_second"] > 0
        assert row["cpu_ms_per_event"] > 0
    ecswatch = next(row for row in rows if row["contender"] == "ecswatch")
    assert ecswatch["p99_lag_seconds"] is not None
    assert "x seed-style" in result.stdout
    assert "yardstick at" in result.stdout
    assert {row["endpoint"] for row in rows} == {endpoint}
