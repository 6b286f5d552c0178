"""ClickHouse-specific guarantees: no duplicate visible before merges, exact rollup, first wins.

These go below the Protocol on purpose (they insert through the store's own insert path, past the
id lookup) to reproduce what concurrent appends racing each other leave in the table.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from storage.base import EventFilter, Page, SessionFilter
from storage.clickhouse_store import ClickHouseStore
from storage.schema import EVENT_SCHEMA

T0 = dt.datetime(2024, 3, 4, 9, 0, tzinfo=dt.UTC)


def event(
    i: int, *, session: str = "s-1", new_value: str = "v", received: dt.datetime | None = None
) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=i)),
        "timestamp": T0 + dt.timedelta(seconds=i),
        "event_type": "cell_change",
        "user_name": "CORP\\alice" if i % 2 else "CORP\\bob",
        "machine_name": "PC-1",
        "session_id": session,
        "workbook_name": f"book{i % 3}.xlsx",
        "sheet_name": "Sheet1",
        "cell_address": "B2",
        "old_value": None,
        "new_value": new_value,
        "formula": None,
        "correlation_id": None,
        "attributes": [("AddinVersion", '"3.4.1.0"')],
        "received_at": received or dt.datetime.now(dt.UTC),
        "batch_id": "b",
    }


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


@pytest.fixture
def ch(chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(f"chdb://{chdb_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    store.open()
    try:
        yield store
    finally:
        store.close()


def raw_count(store: ClickHouseStore, sql: str) -> int:
    return int(store._conn().command(sql))


def test_duplicates_invisible_before_merges(ch: ClickHouseStore) -> None:
    ch._conn().command("SYSTEM STOP MERGES audit_events")
    ch._insert(table([event(i) for i in range(1, 4)]))
    ch._insert(table([event(i) for i in range(1, 6)]))  # 1..3 again, in a second part
    assert raw_count(ch, "SELECT count() FROM audit_events") == 8
    assert (
        raw_count(
            ch,
            "SELECT count() FROM system.parts WHERE database = currentDatabase() "
            "AND table = 'audit_events' AND active",
        )
        == 2
    )
    rows = ch.query(EventFilter(), Page(limit=100))
    assert rows.num_rows == 5
    assert len(set(rows.column("event_id").to_pylist())) == 5
    stats = ch.stats(EventFilter(), 10)
    assert stats.total_events == 5
    assert sum(stats.by_event_type.column("count").to_pylist()) == 5
    assert sum(stats.top_users.column("count").to_pylist()) == 5
    series = ch.timeseries(EventFilter(), "hour", None)
    assert series.column("count").to_pylist() == [5]
    assert ch.get_event(str(uuid.UUID(int=2))).num_rows == 1
    assert ch.cell_history("book1.xlsx", "Sheet1", "B2", 100).num_rows == 2


def test_sessions_rollup_exact_after_duplicate_inserts(ch: ClickHouseStore) -> None:
    ch._conn().command("SYSTEM STOP MERGES sessions_rollup")
    ch._insert(table([event(i) for i in range(1, 4)]))
    ch._insert(table([event(i) for i in range(1, 7)]))
    ch._insert(table([event(i) for i in range(2, 7)]))
    sessions = ch.sessions(SessionFilter(), 10, None).to_pylist()
    assert len(sessions) == 1
    (one,) = sessions
    assert one["event_count"] == 6
    assert one["start_time"] == T0 + dt.timedelta(seconds=1)
    assert one["end_time"] == T0 + dt.timedelta(seconds=6)
    assert one["duration_s"] == 5.0
    assert one["user_name"] == "CORP\\alice"
    assert one["workbooks"] == ["book0.xlsx", "book1.xlsx", "book2.xlsx"]
    assert ch.session("s-1").to_pylist() == sessions
    assert ch.stats(EventFilter(), 10).unique_sessions == 1


def test_exact_retry_dropped_by_insert_token(ch: ClickHouseStore) -> None:
    rows = table([event(i) for i in range(1, 4)])
    ch._insert(rows)
    ch._insert(rows)  # what a retry after a lost answer does
    assert raw_count(ch, "SELECT count() FROM audit_events") == 3


def test_first_stored_version_wins_even_when_racing(ch: ClickHouseStore) -> None:
    first = dt.datetime.now(dt.UTC)
    ch._insert(table([event(1, new_value="first", received=first)]))
    ch._insert(table([event(1, new_value="second", received=first + dt.timedelta(seconds=1)), event(2)]))
    got = ch.get_event(str(uuid.UUID(int=1)))
    assert got.column("new_value").to_pylist() == ["first"]
    ch._conn().command("OPTIMIZE TABLE audit_events FINAL")
    assert raw_count(ch, "SELECT count() FROM audit_events") == 2
    assert ch.get_event(str(uuid.UUID(int=1))).column("new_value").to_pylist() == ["first"]


def test_append_reports_duplicates_and_keeps_first(ch: ClickHouseStore) -> None:
    batch = table([event(1, new_value="a"), event(2), event(1, new_value="b")])
    first = ch.append(batch)
    assert (first.stored, first.duplicates) == (2, 1)
    again = ch.append(table([event(1, new_value="c"), event(3)]))
    assert (again.stored, again.duplicates) == (1, 1)
    assert ch.get_event(str(uuid.UUID(int=1))).column("new_value").to_pylist() == ["a"]
    assert raw_count(ch, "SELECT count() FROM audit_events") == 3


def test_results_are_exactly_the_protocol_types(ch: ClickHouseStore) -> None:
    ch.append(table([event(i) for i in range(1, 4)]))
    assert ch.query(EventFilter(), Page()).schema == EVENT_SCHEMA
    assert ch.cell_history("book1.xlsx", "Sheet1", "B2", 5).schema == EVENT_SCHEMA
    empty = ch.get_event(str(uuid.uuid4()))
    assert empty.num_rows == 0
    assert empty.schema == EVENT_SCHEMA
