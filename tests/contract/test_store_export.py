"""Contract: export files and manifest, health, close (runs on every store)."""

from __future__ import annotations

import datetime as dt
import hashlib
from pathlib import Path

import pyarrow.parquet as pq

from storage.base import EventFilter, EventStore
from storage.schema import EVENT_SCHEMA
from tests.contract.events import BASE, event, table


def test_export_writes_partitioned_files_and_a_verifiable_manifest(store: EventStore, tmp_path: Path) -> None:
    rows = [event(i, timestamp=BASE + dt.timedelta(days=10 * i)) for i in range(1, 9)]  # March..May
    store.append(table(rows))
    flt = EventFilter(start=BASE + dt.timedelta(days=15), end=BASE + dt.timedelta(days=75))
    result = store.export(flt, str(tmp_path / "out"))
    manifest = result.manifest
    expected = {r["event_id"] for r in rows if flt.start <= r["timestamp"] < flt.end}
    assert manifest["rows"] == len(expected)
    files = manifest["files"]
    assert isinstance(files, list)
    got: set[str] = set()
    for entry in files:
        path = Path(result.destination) / entry["path"]
        assert path.parent.parent.name.startswith("year=")
        assert path.parent.name.startswith("month=")
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        data = pq.read_table(path)
        assert data.num_rows == entry["rows"]
        assert data.schema.names == EVENT_SCHEMA.names
        got |= set(data.column("event_id").to_pylist())
    assert got == expected
    months = {
        f"year={r['timestamp']:%Y}/month={r['timestamp']:%m}" for r in rows if r["event_id"] in expected
    }
    assert {Path(e["path"]).parent.as_posix() for e in files} == months
    assert len(months) == 3
    assert (Path(result.destination) / "manifest.json").exists()
    assert manifest["schema"]


def test_health_is_ok_on_an_open_store(store: EventStore) -> None:
    assert store.health().ok
    store.append(table([event(1)]))
    assert store.health().ok


def test_close_is_idempotent(store: EventStore) -> None:
    store.close()
    store.close()
