"""Open an export directory with polars and DuckDB; the rows are the exported ones."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from analytics.demo import generate_events
from analytics.parquet import duckdb_relation, scan_events
from storage.base import EventFilter, EventStore
from storage.schema import EVENT_SCHEMA


def test_scan_an_export(store: EventStore, tmp_path: Path) -> None:
    table = generate_events(300, seed=9, days=45)
    store.append(table)
    result = store.export(EventFilter(), str(tmp_path / "export"))
    lazy = scan_events(tmp_path / "export")
    frame = lazy.collect()
    assert frame.columns == EVENT_SCHEMA.names
    assert frame.height == result.manifest["rows"] == 300
    assert sorted(frame["event_id"].to_list()) == sorted(table.column("event_id").to_pylist())
    months = scan_events(tmp_path / "export", with_partitions=True).select("year", "month").unique().collect()
    assert months.height >= 2
    con = duckdb.connect()
    try:
        relation = duckdb_relation(tmp_path / "export", con)
        assert relation.aggregate("count(*) AS n").fetchall() == [(300,)]
        per_user = relation.aggregate("user_name, count(*) AS n", "user_name").fetchall()
        want = pl.DataFrame(pl.from_arrow(table.select(["user_name"]))).group_by("user_name").len()
        assert dict(per_user) == dict(want.iter_rows())
    finally:
        con.close()
