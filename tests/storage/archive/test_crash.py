"""kill -9 after each step of a move, then run again: nothing lost, nothing doubled, no orphan counted.

Each case runs tests/storage/archive/crash_child.py twice, on both hot stores: `load` archives
January and February and is killed right after one step of February's move (January is already
moved); `check` opens the store in a fresh process, checks every event once and every figure
against the plain-Python oracle (so a month served by both tiers, or by neither, fails here),
archives again, checks again, and requires `verify` to pass: the orphan files of a killed move are
never read and are gone after the re-run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.storage.archive.crash_child import STEPS

REPO = Path(__file__).resolve().parents[3]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.storage.archive.crash_child", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["parquet", "clickhouse"])
@pytest.mark.parametrize("step", STEPS)
def test_kill_after_each_step_then_run_again(tmp_path: Path, kind: str, step: str) -> None:
    hot = f"parquet://{tmp_path / 'hot'}" if kind == "parquet" else f"chdb://{tmp_path / 'chdb'}"
    archive = str(tmp_path / "archive")
    loaded = run(hot, archive, "load", step)
    assert loaded.returncode == -9, f"not killed after {step}: {loaded.returncode}\n{loaded.stderr[-3000:]}"
    checked = run(hot, archive, "check", step)
    assert checked.returncode == 0, f"after a kill at {step}:\n{checked.stdout}\n{checked.stderr[-3000:]}"
