"""Long reads in bounded keyset pages (storage.keyset) and `page_end`, on every store.

Timestamps repeat (ties are broken by event_id) so page boundaries fall inside runs of equal
timestamps; the oracle is a plain sort of the appended rows.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from storage.base import Cursor, EventFilter, EventStore, Order, Page
from storage.keyset import MAX_PAGE_ROWS, MIN_PAGE_ROWS, keyset_tables
from tests.contract.events import BASE, Row, event, table

N = 1_500


def _rows() -> list[Row]:
    users = ["CORP\\alice", "CORP\\bob", "CORP\\carol"]
    return [
        event(
            (i * 7919) % 100_003 + 1,  # ids not in timestamp order
            timestamp=BASE + dt.timedelta(seconds=i // 9),  # runs of 9 equal timestamps
            user_name=users[i % 3],
            new_value="x" * (i % 50),
        )
        for i in range(N)
    ]


def _ordered(rows: list[Row], order: Order) -> list[str]:
    keyed = sorted(rows, key=lambda r: (r["timestamp"], r["event_id"]), reverse=order == "desc")
    return [r["event_id"] for r in keyed]


def _key(row: Row) -> Cursor:
    delta = row["timestamp"] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return Cursor(timestamp_us=delta // dt.timedelta(microseconds=1), event_id=row["event_id"])


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_page_end_names_the_last_row_of_a_page_only_when_more_follow(store: EventStore, order: Order) -> None:
    rows = _rows()
    store.append(table(rows))
    by_id = {r["event_id"]: r for r in rows}
    want = _ordered(rows, order)
    for limit in (1, 9, 10, 700, N - 1):
        assert store.page_end(EventFilter(), Page(limit=limit, order=order)) == _key(by_id[want[limit - 1]])
    assert store.page_end(EventFilter(), Page(limit=N, order=order)) is None
    after = _key(by_id[want[99]])
    got = store.page_end(EventFilter(), Page(limit=50, order=order, after=after))
    assert got == _key(by_id[want[149]])
    bob = [r for r in rows if r["user_name"] == "CORP\\bob"]
    bob_want = _ordered(bob, order)
    flt = EventFilter(user_names=("CORP\\bob",))
    assert store.page_end(flt, Page(limit=123, order=order)) == _key(by_id[bob_want[122]])
    assert store.page_end(flt, Page(limit=len(bob), order=order)) is None


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_keyset_pages_cover_every_row_once_in_bounded_pages(store: EventStore, order: Order) -> None:
    rows = _rows()
    store.append(table(rows))
    want = _ordered(rows, order)
    asked: list[int] = []

    def query(flt: EventFilter, page: Page) -> pa.Table:
        asked.append(page.limit)
        return store.query(flt, page)

    pages = list(keyset_tables(query, EventFilter(), order, None, batch_bytes=64 * 1024))
    got = [i for p in pages for i in p.column("event_id").to_pylist()]
    assert got == want
    assert len(pages) > 5
    assert all(MIN_PAGE_ROWS <= n <= MAX_PAGE_ROWS for n in asked)
    assert max(p.nbytes for p in pages) <= 4 * 64 * 1024
    # a window: strictly after row 100, up to and including row 1,000; then at most 333 rows
    by_id = {r["event_id"]: r for r in rows}
    start, end = _key(by_id[want[100]]), _key(by_id[want[1_000]])
    tables = keyset_tables(store.query, EventFilter(), order, start, batch_bytes=64 * 1024, until=end)
    assert [i for t in tables for i in t.column("event_id").to_pylist()] == want[101:1_001]
    capped = keyset_tables(store.query, EventFilter(), order, start, batch_bytes=64 * 1024, max_rows=333)
    assert [i for t in capped for i in t.column("event_id").to_pylist()] == want[101:434]


def test_exports_are_written_from_bounded_pages(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's own query, wrapped to count the pages its export asks for."""
    rows = _rows()
    store.append(table(rows))
    seen: list[int] = []
    inner = store.query

    def counting(flt: EventFilter, page: Page) -> pa.Table:
        seen.append(page.limit)
        return inner(flt, page)

    monkeypatch.setattr(store, "query", counting)
    result = store.export(EventFilter(), str(tmp_path / "out"))
    assert result.manifest["rows"] == N
    assert len(seen) >= 4  # pages of 128, 256, 512, 1,024 rows (growing from maximal-event size)
    assert max(seen) <= MAX_PAGE_ROWS
    files = result.manifest["files"]
    assert isinstance(files, list)
    written = [
        i
        for entry in files
        for i in pq.read_table(Path(result.destination) / entry["path"]).column("event_id").to_pylist()
    ]
    assert written == _ordered(rows, "asc")
