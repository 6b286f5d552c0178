"""ParquetStore internals: compaction, orphans, snapshots, the root lock and the id index."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.base import EventFilter, Page
from storage.errors import TerminalStoreError
from storage.parquet.index import HashIndex
from storage.parquet.layout import (
    CELL_KEY,
    FILE_SCHEMA,
    MANIFEST_FILE,
    ROW_GROUP_ROWS,
    FileSet,
    bloom_filter_options,
)
from storage.parquet.store import ParquetStore
from tests.contract.events import BASE, Row, event, table


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ParquetStore]:
    s = ParquetStore(tmp_path / "pq", compact_threshold=4)
    s.open()
    try:
        yield s
    finally:
        s.close()


def _month_batch(start: int, n: int = 10) -> list[Row]:
    # Reverse time order inside a batch, so a merged file must really be sorted.
    return [event(i, timestamp=BASE + dt.timedelta(minutes=10_000 - i)) for i in range(start, start + n)]


def _all_ids(s: ParquetStore) -> list[str]:
    ids: list[str] = s.query(EventFilter(), Page(limit=100_000, order="asc")).column("event_id").to_pylist()
    return ids


def test_compaction_merges_small_files_sorted_and_keeps_every_row(store: ParquetStore) -> None:
    for k in range(10):
        store.append(table(_month_batch(k * 10)))
    store.compact()
    files = store._files.manifest.files
    assert len(files) < 4
    assert sum(f.rows for f in files) == 100
    assert sorted(_all_ids(store)) == sorted({e["event_id"] for k in range(10) for e in _month_batch(k * 10)})
    biggest = max(files, key=lambda f: f.rows)
    data = pq.read_table(store.root / biggest.path).to_pylist()
    keys = [(r["_cell_key"], r["timestamp"], r["event_id"]) for r in data]
    assert keys == sorted(keys)  # clustered by cell key for cell history, then by time
    on_disk = {p.relative_to(store.root).as_posix() for p in (store.root / "events").rglob("*.parquet")}
    assert on_disk == {f.path for f in files}


def test_dedup_survives_compaction_and_reopen(tmp_path: Path) -> None:
    s = ParquetStore(tmp_path / "pq", compact_threshold=2)
    s.open()
    for k in range(4):
        s.append(table(_month_batch(k * 10)))
    s.compact()
    s.close()
    s = ParquetStore(tmp_path / "pq", compact_threshold=2)
    s.open()
    try:
        result = s.append(table(_month_batch(0, 40)))
        assert (result.stored, result.duplicates) == (0, 40)
        assert s.stats(EventFilter(), 5).total_events == 40
    finally:
        s.close()


def test_orphans_are_deleted_at_open(tmp_path: Path) -> None:
    s = ParquetStore(tmp_path / "pq")
    s.open()
    s.append(table(_month_batch(0)))
    part = next((s.root / "events").rglob("*.parquet")).parent
    s.close()
    (part / "deadbeef.parquet").write_bytes(b"not committed")
    (part / ".tmp-123.parquet").write_bytes(b"half written")
    (s.root / f"{MANIFEST_FILE}.tmp-9").write_text("{")
    s.open()
    try:
        assert not (part / "deadbeef.parquet").exists()
        assert not (part / ".tmp-123.parquet").exists()
        assert not list(s.root.glob(f"{MANIFEST_FILE}.tmp*"))
        assert len(_all_ids(s)) == 10
    finally:
        s.close()


def _with_key(t: pa.Table) -> pa.Table:
    return t.append_column(FILE_SCHEMA.field(CELL_KEY), pa.nulls(t.num_rows, pa.uint64()))


def test_retired_files_outlive_open_snapshots(tmp_path: Path) -> None:
    files = FileSet(tmp_path)
    files.load()
    first = files.write(_with_key(table(_month_batch(0))), 202403)
    files.commit([first])
    with files.snapshot() as snap:
        second = files.write(_with_key(table(_month_batch(10))), 202403)
        files.commit([second], remove=[first])
        assert (tmp_path / snap[0].path).exists()
    assert not (tmp_path / first.path).exists()
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert [f["path"] for f in manifest["files"]] == [second.path]
    assert manifest["generation"] == 2


def test_a_second_store_cannot_open_the_same_root(store: ParquetStore) -> None:
    other = ParquetStore(store.root)
    with pytest.raises(TerminalStoreError):
        other.open()


def test_hash_index_membership() -> None:
    index = HashIndex()
    rng = np.random.default_rng(1)
    added = rng.integers(0, 2**63, 5000, dtype=np.uint64)
    for chunk in np.array_split(added, 17):
        index.add(chunk)
    assert len(index) == 5000
    assert index.contains(added).all()
    others = rng.integers(0, 2**63, 1000, dtype=np.uint64)
    assert index.contains(others).sum() == np.isin(others, added).sum()


def test_cell_history_over_many_months_is_exact_for_every_limit(store: ParquetStore) -> None:
    # One cell edited in 9 months (asked newest first in groups of 1, 2, 4, ... months), with other
    # cells around it and merged files clustered by cell key: every limit gives the newest rows.
    rows = [
        event(
            m * 100 + j,
            timestamp=BASE + dt.timedelta(days=31 * m, hours=j),
            cell_address="B2" if j % 3 else "C3",
        )
        for m in range(9)
        for j in range(12)
    ]
    for m in range(9):
        for part in range(0, 12, 3):
            store.append(table(rows[m * 12 + part : m * 12 + part + 3]))
    store.compact()
    assert len(store._files.manifest.files) == 9  # every month merged into one cell-clustered file
    want = sorted(((r["timestamp"], r["event_id"]) for r in rows if r["cell_address"] == "B2"), reverse=True)
    for limit in (1, 7, 8, 9, 24, 25, 48, 72, 100):
        got = store.cell_history("book.xlsx", "Sheet1", "B2", limit)
        assert list(
            zip(got.column("timestamp").to_pylist(), got.column("event_id").to_pylist(), strict=True)
        ) == [(ts, eid) for ts, eid in want[:limit]]


def test_bloom_filters_are_sized_for_a_row_group_whatever_the_file() -> None:
    """A merged month's filters must not grow with the month (see bloom_filter_options)."""
    one_group = bloom_filter_options(ROW_GROUP_ROWS)
    assert bloom_filter_options(6_500_000) == one_group
    assert {o["ndv"] for o in one_group.values()} == {ROW_GROUP_ROWS}
    assert bloom_filter_options(10)["event_id"]["ndv"] == 1024
