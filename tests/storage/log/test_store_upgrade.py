"""Stores written before the log existed: their events stay readable, outside the log (null leaves).

Each engine's real pre-log layout is made by the real means: Parquet files without the three new
columns (rewritten with their footer rollups kept, the manifest without a leaf count, no log/);
a ClickHouse database created by the DDL files up to 006 only. Opened by today's code, the old
events read with null session_seq and leaf columns, new events become leaves 0, 1, 2 ..., a
duplicate of an old event is still dropped, and verification names the old events as outside
the log (the documented limit: they were never leaves).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from storage.base import EventFilter, EventStore
from storage.clickhouse.migrations import DDL_DIR
from storage.clickhouse.store import ClickHouseStore
from storage.factory import create_store
from storage.log.store_log import LogOptions
from storage.log.verify import verify_export
from storage.parquet.store import ParquetStore
from tests.conftest import new_database
from tests.contract.events import eid, event, page_all, table
from tests.storage.log.storekit import independent_leaf, log_of

NEW = ("session_seq", "leaf_index", "leaf_hash")
OLD_IDS = [eid(i) for i in range(1, 6)]


def _check_upgraded(store: EventStore, tmp_path: Path) -> None:
    """Old events outside the log, new ones leaves 0..2, a resent old one dropped, verify names the old."""
    result = store.append(table([event(3), event(6, session_seq=0), event(7), event(8)]))
    assert (result.stored, result.duplicates) == (3, 1)
    rows = {r["event_id"]: r for r in page_all(store, EventFilter(), order="asc", limit=100)}
    assert [rows[i]["leaf_index"] for i in OLD_IDS] == [None] * 5
    assert [rows[i]["session_seq"] for i in OLD_IDS] == [None] * 5
    assert [rows[eid(i)]["leaf_index"] for i in (6, 7, 8)] == [0, 1, 2]
    assert rows[eid(6)]["session_seq"] == 0
    assert all(rows[eid(i)]["leaf_hash"] == independent_leaf(rows[eid(i)]) for i in (6, 7, 8))
    log = log_of(store)
    assert log is not None
    assert log.log.size == 3
    store.export(EventFilter(), str(tmp_path / "export"))
    note = (tmp_path / "export" / "log" / "checkpoint").read_text()
    report = verify_export(tmp_path / "export", note, log.log.checkpoints.signer.verifier)
    assert not report.ok
    assert sorted(f.event_id or "" for f in report.findings) == OLD_IDS
    assert {f.kind for f in report.findings} == {"inserted"}


def _make_parquet_pre_log(root: Path) -> None:
    store = ParquetStore(root)
    store.open()
    store.append(table([event(i) for i in range(1, 6)]))
    store.close()
    manifest_path = root / "_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"]:
        path = root / entry["path"]
        old = pq.read_table(path)
        metadata = pq.read_metadata(path).metadata  # the footer rollup stays
        pq.write_table(old.drop_columns(list(NEW)).replace_schema_metadata(metadata), path)
    manifest.pop("leaves")
    manifest_path.write_text(json.dumps(manifest))
    shutil.rmtree(root / "log")


def test_a_parquet_store_from_before_the_log(tmp_path: Path) -> None:
    root = tmp_path / "parquet"
    _make_parquet_pre_log(root)
    assert NEW[0] not in pq.read_schema(next((root / "events").rglob("*.parquet"))).names
    store = ParquetStore(root, compact_threshold=2)
    store.open()
    try:
        _check_upgraded(store, tmp_path)
        store.compact()  # an old file and a new one merge into one file with the columns
        assert len(store._files.manifest.files) == 1
        rows = {r["event_id"]: r for r in page_all(store, EventFilter(), order="asc", limit=100)}
        assert [rows[eid(i)]["leaf_index"] for i in (1, 6, 7, 8)] == [None, 0, 1, 2]
        from api.app import create_app
        from api.settings import Settings

        settings = Settings(
            store_url=f"parquet://{tmp_path / 'x'}",
            spool_dir=tmp_path / "spool",
            archive_url=str(tmp_path / "a"),
        )
        with TestClient(create_app(settings, store=store)) as client:
            old = client.get(f"/api/events/{eid(1)}/proof")
            assert (old.status_code, old.json()["error"]["code"]) == (404, "not_in_log")
            assert client.get(f"/api/events/{eid(6)}/proof").status_code == 200
    finally:
        store.close()


def test_a_clickhouse_database_from_before_the_log(tmp_path: Path, chdb_path: Path) -> None:
    old_ddl = tmp_path / "ddl"
    old_ddl.mkdir()
    for path in sorted(DDL_DIR.glob("00[0-6]_*.sql")):
        shutil.copy(path, old_ddl / path.name)
    database = new_database()
    # The database as the code before the log left it (not its single writer here: this process's
    # writer loads its id filter from the table once, after the rows are in).
    old = ClickHouseStore(
        f"chdb://{chdb_path}",
        database=database,
        ddl_dir=old_ddl,
        single_writer=False,
        log=LogOptions(enabled=False),
    )
    old.open()
    old._conn().insert_arrow("audit_events", table([event(i) for i in range(1, 6)]).drop_columns(list(NEW)))
    old.close()
    store = create_store(f"chdb://{chdb_path}", database=database)
    store.open()
    try:
        assert "007_transparency_log.sql" in store.migrations_applied  # type: ignore[attr-defined]
        _check_upgraded(store, tmp_path)
    finally:
        store.close()
