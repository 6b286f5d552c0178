"""ClickHouse-specific guarantees: no duplicate visible before merges, exact rollup, first wins.

Every test runs in both writer modes: "single" (the embedded default: one writer, in-process id
filter, reads without FINAL) and "shared" (several writers may race: reads use FINAL). Some go
below the Protocol on purpose (they insert through the store's own insert path, past the id
lookup) to reproduce what concurrent appends racing each other leave in the table; that can only
happen with several writers, so those run in "shared" mode only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from storage.base import Bucket, EventFilter, GroupBy, Page, SessionFilter
from storage.clickhouse.store import ClickHouseStore
from storage.errors import TerminalStoreError
from storage.schema import EVENT_SCHEMA
from tests.conftest import new_database

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


@pytest.fixture(params=["single", "shared"])
def ch(request: pytest.FixtureRequest, chdb_path: Path) -> Iterator[ClickHouseStore]:
    store = ClickHouseStore(
        f"chdb://{chdb_path}",
        database=new_database(),
        single_writer=request.param == "single",
    )
    store.open()
    try:
        yield store
    finally:
        store.close()


def raw_count(store: ClickHouseStore, sql: str) -> int:
    return int(store._conn().command(sql))


def test_duplicates_invisible_before_merges(ch: ClickHouseStore) -> None:
    ch._conn().command("SYSTEM STOP MERGES audit_events")
    if ch.single_writer:  # the only writer: the lookup keeps the re-sent 1..3 out of the table
        ch.append(table([event(i) for i in range(1, 4)]))
        result = ch.append(table([event(i) for i in range(1, 6)]))
        assert (result.stored, result.duplicates) == (2, 3)
        assert raw_count(ch, "SELECT count() FROM audit_events") == 5
    else:  # writers racing past the lookup: 1..3 again, in a second part
        ch._insert(table([event(i) for i in range(1, 4)]))
        ch._insert(table([event(i) for i in range(1, 6)]))
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


class LostAnswer:
    """The store's own client, whose first insert commits and then fails as a lost answer would."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def insert_arrow(self, *args: Any, **kwargs: Any) -> Any:
        result = self._client.insert_arrow(*args, **kwargs)
        if not self.failed:
            self.failed += 1
            raise ConnectionError("connection reset after the insert was sent")
        return result


def test_retry_after_a_committed_insert_looks_up_again(ch: ClickHouseStore) -> None:
    """A retried append re-checks its ids, so an insert that did commit is not stored twice."""
    ch.append(table([event(1)]))
    lost = LostAnswer(ch._client)
    ch._client = lost
    try:
        result = ch.append(table([event(i) for i in range(1, 5)]))
    finally:
        ch._client = lost._client
    assert lost.failed == 1  # the first attempt committed, then "failed"; the retry found its rows
    assert (result.stored, result.duplicates) == (3, 1)
    assert raw_count(ch, "SELECT count() FROM audit_events") == 4
    assert ch.stats(EventFilter(), 10).total_events == 4


def test_first_stored_version_wins_even_when_racing(ch: ClickHouseStore) -> None:
    if ch.single_writer:
        pytest.skip("only several writers can race past the id lookup")
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


def test_single_writer_filter_loads_what_others_stored(chdb_path: Path) -> None:
    """A single writer opening a database that already holds events still drops their ids."""
    database = new_database()
    before = ClickHouseStore(f"chdb://{chdb_path}", database=database, single_writer=False)
    before.open()
    before.append(table([event(i) for i in range(1, 4)]))
    before.close()
    single = ClickHouseStore(f"chdb://{chdb_path}", database=database)
    single.open()
    try:
        assert single.single_writer
        result = single.append(table([event(i) for i in range(2, 6)]))
        assert (result.stored, result.duplicates) == (2, 2)
        other = ClickHouseStore(f"chdb://{chdb_path}", database=database)  # same process, same db
        other.open()
        again = other.append(table([event(i) for i in range(4, 8)]))
        other.close()
        assert (again.stored, again.duplicates) == (2, 2)
        assert raw_count(single, "SELECT count() FROM audit_events") == 7
    finally:
        single.close()


def test_single_writer_needs_the_embedded_engine() -> None:
    with pytest.raises(TerminalStoreError):
        ClickHouseStore("http://u:p@h:8123/db", single_writer=True)
    assert not ClickHouseStore("http://u:p@h:8123/db").single_writer


ROLLUP_FILTERS = {
    "none": EventFilter(),
    "whole hours": EventFilter(start=T0 + dt.timedelta(hours=1), end=T0 + dt.timedelta(days=3)),
    "open end": EventFilter(start=T0 + dt.timedelta(hours=5)),
    "part hour": EventFilter(start=T0 + dt.timedelta(minutes=90)),
    "user": EventFilter(user_names=("CORP\\alice",)),
}


@pytest.mark.parametrize("name", ROLLUP_FILTERS)
def test_rollup_figures_equal_the_scanned_ones(chdb_path: Path, name: str) -> None:
    """The single writer's event_counts answers equal a FINAL scan of the events, nulls included."""
    database = new_database()
    single = ClickHouseStore(f"chdb://{chdb_path}", database=database)
    single.open()
    rows = [
        {
            **event(i),
            "timestamp": T0 + dt.timedelta(minutes=37 * i),
            "workbook_name": None if i % 4 == 0 else f"b{i % 3}",
        }
        for i in range(1, 200)
    ]
    single.append(table(rows[:120]))
    single.append(table(rows[100:]))
    shared = ClickHouseStore(f"chdb://{chdb_path}", database=database, single_writer=False)
    shared.open()
    try:
        flt = ROLLUP_FILTERS[name]
        assert single.stats(flt, 2) == shared.stats(flt, 2)
        buckets: tuple[Bucket, ...] = ("minute", "hour", "day", "week")
        groups: tuple[GroupBy | None, ...] = (None, "event_type", "user_name", "workbook_name")
        for bucket in buckets:
            for group in groups:
                got = single.timeseries(flt, bucket, group)
                assert got.equals(shared.timeseries(flt, bucket, group)), (bucket, group)
    finally:
        shared.close()
        single.close()
