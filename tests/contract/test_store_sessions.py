"""Contract: session figures, window and user selection, paging (runs on every store)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from storage.base import EventStore, SessionFilter
from tests.contract.events import BASE, eid, event, table

M = dt.timedelta(minutes=1)
COLUMNS = [
    "session_id",
    "user_name",
    "machine_name",
    "start_time",
    "end_time",
    "duration_s",
    "event_count",
    "workbooks",
]


def _load(store: EventStore) -> None:
    rows = [
        # s-a: first event is a tie at BASE; eid(1) < eid(2) so eid(1)'s user/machine win.
        event(
            2, timestamp=BASE, session_id="s-a", user_name="bob", machine_name="PC-B", workbook_name="z.xlsx"
        ),
        event(
            1, timestamp=BASE, session_id="s-a", user_name="alice", machine_name=None, workbook_name="b.xlsx"
        ),
        event(3, timestamp=BASE + 90 * M, session_id="s-a", user_name="bob", workbook_name="b.xlsx"),
        event(4, timestamp=BASE + 10 * M, session_id="s-a", workbook_name=None),
        event(5, timestamp=BASE + 30 * M, session_id="s-b", user_name="bob", workbook_name=None),
        event(6, timestamp=BASE + 200 * M, session_id="s-c", user_name="carol"),
        event(7, timestamp=BASE + 210 * M, session_id="s-c", user_name="carol"),
        event(8, timestamp=BASE + 5 * M, session_id=None),
    ]
    store.append(table(rows))
    store.append(table(rows[:3]))  # re-sent: must not change any figure


def test_session_figures(store: EventStore) -> None:
    _load(store)
    got = store.session("s-a")
    assert got.column_names == COLUMNS
    assert got.schema.field("duration_s").type == pa.float64()
    assert got.schema.field("event_count").type == pa.int64()
    assert got.schema.field("start_time").type == pa.timestamp("us", tz="UTC")
    assert got.to_pylist() == [
        {
            "session_id": "s-a",
            "user_name": "alice",
            "machine_name": None,
            "start_time": BASE,
            "end_time": BASE + 90 * M,
            "duration_s": 5400.0,
            "event_count": 4,
            "workbooks": ["b.xlsx", "z.xlsx"],
        }
    ]
    only_null_workbooks = store.session("s-b").to_pylist()[0]
    assert only_null_workbooks["workbooks"] == []
    assert only_null_workbooks["duration_s"] == 0.0
    assert store.session("missing").num_rows == 0


def test_sessions_newest_first_and_without_null_ids(store: EventStore) -> None:
    _load(store)
    got = store.sessions(SessionFilter(), 10, None)
    assert got.column_names == COLUMNS
    assert got.column("session_id").to_pylist() == ["s-c", "s-b", "s-a"]
    assert got.column("event_count").to_pylist() == [2, 1, 4]


def test_window_selects_sessions_but_figures_cover_the_whole_session(store: EventStore) -> None:
    _load(store)
    got = store.sessions(SessionFilter(start=BASE + 60 * M, end=BASE + 100 * M), 10, None).to_pylist()
    assert [s["session_id"] for s in got] == ["s-a"]
    assert got[0]["event_count"] == 4
    assert got[0]["start_time"] == BASE
    assert store.sessions(SessionFilter(start=BASE + 91 * M, end=BASE + 200 * M), 10, None).num_rows == 0


def test_user_filter_is_the_sessions_first_user(store: EventStore) -> None:
    _load(store)
    bob = store.sessions(SessionFilter(user_name="bob"), 10, None)
    assert bob.column("session_id").to_pylist() == ["s-b"]
    alice = store.sessions(SessionFilter(user_name="alice"), 10, None)
    assert alice.column("session_id").to_pylist() == ["s-a"]


def test_session_paging_visits_each_once(store: EventStore) -> None:
    rows = [event(i, timestamp=BASE + (i // 2) * M, session_id=f"s-{i:02d}") for i in range(1, 12)]
    store.append(table(rows))
    seen: list[str] = []
    after: tuple[dt.datetime, str] | None = None
    while True:
        page = store.sessions(SessionFilter(), 3, after).to_pylist()
        seen += [p["session_id"] for p in page]
        if len(page) < 3:
            break
        after = (page[-1]["start_time"], page[-1]["session_id"])
    expected = sorted(rows, key=lambda r: (r["timestamp"], r["session_id"]), reverse=True)
    assert seen == [r["session_id"] for r in expected]
    assert eid(1) != eid(2)
