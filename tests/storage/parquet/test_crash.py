"""Crash safety: kill -9 a process appending (and compacting) at random points, then reopen.

Invariants after every kill: every append that returned is fully present; no append is partly
present (a batch spans two months, i.e. two files, committed by one manifest swap); no event_id is
visible twice; the manifest lists only existing files, each with its rollup in its footer, and
after open nothing else is on disk; rollup-answered stats equal the plain rows.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage.base import EventFilter, Page
from storage.parquet.layout import MANIFEST_FILE
from storage.parquet.rollup import ROLLUP_KEY
from storage.parquet.store import ParquetStore

REPO = Path(__file__).resolve().parents[3]
BATCH = 40

CHILD = f"""
import datetime as dt, sys
from pathlib import Path
from storage.parquet.store import ParquetStore
from tests.contract.events import event, table
store = ParquetStore(Path(sys.argv[1]), compact_threshold=3)
store.open()
base = dt.datetime(2024, 1, 31, 23, 0, tzinfo=dt.UTC)
for k in range(int(sys.argv[2]), 100_000):
    rows = [event(k * 1000 + j, timestamp=base + dt.timedelta(minutes=3 * j)) for j in range({BATCH})]
    store.append(table(rows))  # the first two after a restart are re-sends: duplicates
    print(k, flush=True)
"""


def _run_and_kill(root: Path, rng: random.Random, start: int) -> set[int]:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(start)], cwd=REPO, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    first = child.stdout.readline()  # start the clock at the first ack: a slow start is not a crash round
    time.sleep(rng.uniform(0.5, 2.0))
    child.kill()
    out, _ = child.communicate()
    return {int(line) for line in (first + out).split()}


def _check_manifest(root: Path) -> None:
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    for entry in manifest["files"]:
        assert (root / entry["path"]).exists()
        assert ROLLUP_KEY in (pq.read_metadata(root / entry["path"]).metadata or {}), "file lacks its rollup"


@pytest.mark.slow
def test_kill_minus_nine_never_loses_or_doubles(tmp_path: Path) -> None:
    root = tmp_path / "pq"
    rng = random.Random(7)
    acked: set[int] = set()
    for _ in range(5):
        acked |= _run_and_kill(root, rng, max(max(acked, default=1) - 1, 0))
        if (root / MANIFEST_FILE).exists():
            _check_manifest(root)
        # No compaction in the checking process: a merge output written while the check lists the
        # directory would be on disk before the manifest swap (the killed writer compacts as usual).
        store = ParquetStore(root, compact_threshold=1_000_000)
        store.open()
        try:
            rows = store.query(EventFilter(), Page(limit=1_000_000))
            ids = rows.column("event_id").to_pylist()
            stats = store.stats(EventFilter(), 1)  # every file wholly inside: rollups only
            assert stats.total_events == len(ids)
            assert stats.unique_sessions == len(set(rows.column("session_id").to_pylist()))
            on_disk = {p.relative_to(root).as_posix() for p in (root / "events").rglob("*") if p.is_file()}
            live = store._files.manifest.files
            assert on_disk == {f.path for f in live}
        finally:
            store.close()
        assert len(ids) == len(set(ids))
        per_batch: dict[int, int] = {}
        for i in ids:
            k = int(i.replace("-", ""), 16) // 1000
            per_batch[k] = per_batch.get(k, 0) + 1
        assert set(per_batch.values()) <= {BATCH}, "a batch is partly visible"
        assert acked <= set(per_batch), "an acknowledged append was lost"
    assert len(acked) > 10
