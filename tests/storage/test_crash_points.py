"""Issue 7: kill -9 at every point of an append, on both stores, then restart and resend.

Each case runs tests/storage/crash_child.py twice: `load` appends a batch (answered), then
appends a second one and is killed at the named point inside that append; `check` opens the
store in a fresh process, checks that everything answered is there and that every figure (stats
over three windows, hour series by every group, every session) agrees with the plain-Python
oracle over what is stored, then resends the unanswered batch grouped with new events and checks
again: each event once, every figure exact.

Points (see crash_child.POINTS): ClickHouse before the insert, after it returned, after only the
first month's part of a two-month insert was committed, and at random instants inside the
engine's insert (parts and their projections being written); Parquet after the first month's
file was written, with both files durable but the manifest not swapped, after the swap but
before the answer, and at random instants of the commit. The ch_shared_* points do the same
with the store as one of several writers (an HTTP server's mode: FINAL at read), and add the
copies a racing writer would leave.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.storage.crash_child import POINTS

REPO = Path(__file__).resolve().parents[2]
RANDOM_ROUNDS = 3


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tests.storage.crash_child", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=240,
    )


def cases() -> list[tuple[str, int]]:
    return [(p, r) for p in POINTS for r in range(RANDOM_ROUNDS if "random" in p else 1)]


@pytest.mark.slow
@pytest.mark.parametrize(("point", "round_no"), cases())
def test_kill_inside_an_append_then_resend(tmp_path: Path, point: str, round_no: int) -> None:
    url = f"chdb://{tmp_path / 'chdb'}" if point.startswith("ch_") else f"parquet://{tmp_path / 'parquet'}"
    loaded = run(url, "load", point)
    assert loaded.returncode == -9, f"not killed at {point}: {loaded.returncode}\n{loaded.stderr[-3000:]}"
    checked = run(url, "check", point)
    assert checked.returncode == 0, f"after a kill at {point}:\n{checked.stdout}\n{checked.stderr[-3000:]}"
