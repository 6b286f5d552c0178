"""Contract: every filter, ordering, keyset paging and cell history (runs on every store)."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.base import Cursor, EventFilter, EventStore, Page
from tests.contract.events import BASE, Row, eid, event, matches, micros, page_all, table, varied

H = dt.timedelta(hours=1)

FILTERS = {
    "none": EventFilter(),
    "start": EventFilter(start=BASE + 40 * H),
    "end": EventFilter(end=BASE + 40 * H),
    "start_end": EventFilter(start=BASE + 21 * H, end=BASE + 77 * H),
    "end_equals_a_timestamp": EventFilter(end=BASE + 70 * H),
    "event_types": EventFilter(event_types=("formula_change", "macro_run")),
    "user_names": EventFilter(user_names=("CORP\\bob",)),
    "two_users": EventFilter(user_names=("CORP\\bob", "CORP\\carol")),
    "workbook_names": EventFilter(workbook_names=("book1.xlsx", "book3.xlsx")),
    "sheet_names": EventFilter(sheet_names=("Sheet2",)),
    "machine_name": EventFilter(machine_name="PC-1"),
    "session_id": EventFilter(session_id="s-3"),
    "correlation_id": EventFilter(correlation_id="c-0"),
    "cell_address": EventFilter(cell_address="B2"),
    "text_old_value": EventFilter(text="Total 1"),
    "text_new_value": EventFilter(text="new 5"),
    "text_formula": EventFilter(text="SUM("),
    "text_is_case_sensitive": EventFilter(text="total"),
    "text_is_literal": EventFilter(text="%"),
    "combined": EventFilter(start=BASE + 10 * H, user_names=("CORP\\alice",), event_types=("cell_change",)),
    "nothing": EventFilter(user_names=("nobody",)),
}


@pytest.fixture
def rows(store: EventStore) -> list[Row]:
    data = varied()
    store.append(table(data[:25]))
    store.append(table(data[25:]))
    return data


def _key(row: Row) -> tuple[dt.datetime, str]:
    return row["timestamp"], row["event_id"]


@pytest.mark.parametrize("name", FILTERS)
def test_filter_matches_plain_python(store: EventStore, rows: list[Row], name: str) -> None:
    flt = FILTERS[name]
    expected = sorted((r for r in rows if matches(r, flt)), key=_key, reverse=True)
    got = store.query(flt, Page(limit=1000)).to_pylist()
    assert [r["event_id"] for r in got] == [r["event_id"] for r in expected]


def test_default_order_is_newest_first_with_event_id_tiebreak(store: EventStore, rows: list[Row]) -> None:
    got = store.query(EventFilter(), Page(limit=1000)).to_pylist()
    assert [_key(r) for r in got] == sorted((_key(r) for r in rows), reverse=True)


def test_ascending_order(store: EventStore, rows: list[Row]) -> None:
    got = store.query(EventFilter(), Page(limit=1000, order="asc")).to_pylist()
    assert [_key(r) for r in got] == sorted(_key(r) for r in rows)


def test_limit_is_respected(store: EventStore, rows: list[Row]) -> None:
    assert store.query(EventFilter(), Page(limit=5)).num_rows == 5


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 2, 7, 60])
def test_keyset_paging_visits_every_match_once(
    store: EventStore, rows: list[Row], order: str, limit: int
) -> None:
    flt = EventFilter(start=BASE + 5 * H)
    seen = page_all(store, flt, order, limit)
    expected = sorted((r for r in rows if matches(r, flt)), key=_key, reverse=order == "desc")
    assert [r["event_id"] for r in seen] == [r["event_id"] for r in expected]


def test_cursor_is_strict_on_ties(store: EventStore, rows: list[Row]) -> None:
    tied = [r for r in rows if r["timestamp"] == rows[9]["timestamp"]]
    assert len(tied) == 2
    lo, hi = sorted(tied, key=_key)
    cursor = Cursor(micros(hi["timestamp"]), hi["event_id"])
    after_desc = store.query(EventFilter(), Page(limit=1, order="desc", after=cursor)).to_pylist()
    assert after_desc[0]["event_id"] == lo["event_id"]
    cursor = Cursor(micros(lo["timestamp"]), lo["event_id"])
    after_asc = store.query(EventFilter(), Page(limit=1, order="asc", after=cursor)).to_pylist()
    assert after_asc[0]["event_id"] == hi["event_id"]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_paging_while_events_arrive(store: EventStore, rows: list[Row], order: str) -> None:
    flt = EventFilter()
    seen: list[str] = []
    after: Cursor | None = None
    extra = 1000
    while True:
        page = store.query(flt, Page(limit=6, order=order, after=after)).to_pylist()  # type: ignore[arg-type]
        seen.extend(r["event_id"] for r in page)
        if len(page) < 6:
            break
        after = Cursor(micros(page[-1]["timestamp"]), page[-1]["event_id"])
        # Between pages: one event far in the past, one far in the future, and a re-sent one.
        newcomers = [
            event(extra, timestamp=BASE - dt.timedelta(days=1)),
            event(extra + 1, timestamp=BASE + dt.timedelta(days=30)),
            rows[0],
        ]
        store.append(table(newcomers))
        extra += 2
    assert len(seen) == len(set(seen))
    assert {r["event_id"] for r in rows} <= set(seen)


def test_cell_history_exact_cell_newest_first(store: EventStore) -> None:
    data = [
        event(1, cell_address="A1", old_value=None, new_value="1"),
        event(2, cell_address="A1", old_value="1", new_value="2", formula="=B1"),
        event(3, cell_address="A10"),
        event(4, cell_address="A1", sheet_name="Other"),
        event(5, cell_address="A1", workbook_name="other.xlsx"),
        event(6, cell_address="a1"),
        event(7, cell_address="A1", old_value="2", new_value=""),
    ]
    store.append(table(data))
    got = store.cell_history("book.xlsx", "Sheet1", "A1", 100).to_pylist()
    assert [r["event_id"] for r in got] == [eid(7), eid(2), eid(1)]
    assert [(r["old_value"], r["new_value"]) for r in got] == [("2", ""), ("1", "2"), (None, "1")]
    assert got[1]["formula"] == "=B1"
    assert store.cell_history("book.xlsx", "Sheet1", "A1", 2).num_rows == 2
    assert store.cell_history("book.xlsx", "Sheet1", "Z9", 10).num_rows == 0


@pytest.mark.parametrize("order", ["desc", "asc"])
@pytest.mark.parametrize("limit", [3, 17, 40])
def test_pages_across_months_in_either_order(store: EventStore, order: str, limit: int) -> None:
    """Events over five months, sent newest month first in two appends.

    Every page is the next `limit` rows of the plain sorted list, whichever months it spans.
    """
    data = [
        event(i, timestamp=BASE + dt.timedelta(days=9 * i), user_name="CORP\\alice" if i % 3 else "CORP\\bob")
        for i in range(1, 17)
    ]
    store.append(table(data[8:]))
    store.append(table(data[:8]))
    for flt in (
        EventFilter(),
        EventFilter(user_names=("CORP\\alice",)),
        EventFilter(end=BASE + 100 * 24 * H),
    ):
        want = sorted(
            (r for r in data if matches(r, flt)),
            key=lambda r: (r["timestamp"], r["event_id"]),
            reverse=order == "desc",
        )
        got = page_all(store, flt, order=order, limit=limit)
        assert [r["event_id"] for r in got] == [r["event_id"] for r in want], flt
