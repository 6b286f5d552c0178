"""The archive tests' events, their archive and a snapshot of every read a store answers.

Three months of 2024 (January and February get archived, March stays hot), with what makes tiers
hard: events at 23:59:59.999999 on the last day of a month and at 00:00:00 on the next, sessions
that run across a month boundary (so across the tiers), cells edited in several months, null
workbooks and machines, two events sharing a timestamp.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from storage.archive.location import ObjectStoreOptions, open_location
from storage.archive.tiers import TieredStore
from storage.base import Cursor, EventFilter, EventStore, Order, Page, SessionFilter, Stats
from tests.contract.events import Row, event, page_all

UTC = dt.UTC
START = dt.datetime(2024, 1, 3, 8, 0, tzinfo=UTC)
LAST_US = dt.timedelta(microseconds=1)
FEB, MAR = dt.datetime(2024, 2, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, tzinfo=UTC)
BEFORE = 202403  # archive January and February


def rows(n: int = 110) -> list[Row]:
    """`n` events spread over January to March 2024, plus the month-edge events."""
    out = [
        event(
            i,
            timestamp=START + dt.timedelta(hours=17 * i, minutes=i % 60),
            event_type=("cell_change", "formula_change", "sheet_add", "workbook_save")[i % 4],
            user_name=f"CORP\\u{i % 5}",
            machine_name=None if i % 6 == 0 else f"PC-{i % 3}",
            session_id=None if i % 9 == 0 else f"s-{i % 7}",
            workbook_name=None if i % 8 == 0 else f"book{i % 3}.xlsx",
            sheet_name="Sheet1",
            cell_address=f"B{i % 4}",
            new_value=f"v{i}",
        )
        for i in range(1, n + 1)
    ]
    edges = [
        (FEB - LAST_US, "edge-a"),  # the last microsecond of January: archived with January
        (FEB, "edge-a"),  # the first of February, same session
        (MAR - LAST_US, "edge-b"),  # the last of February (archived) ...
        (MAR, "edge-b"),  # ... and the first of March (hot): one session in two tiers
        (MAR, "edge-c"),  # a tie on the timestamp
    ]
    for k, (ts, sid) in enumerate(edges):
        out.append(
            event(10_000 + k, timestamp=ts, session_id=sid, user_name=f"CORP\\edge{k % 2}", cell_address="Z9")
        )
    return out


def tiered(hot: EventStore, url: str, options: ObjectStoreOptions | None = None) -> TieredStore:
    """`hot` (already open) behind a tiered store over the archive at `url`, opened."""
    store = TieredStore(hot, open_location(url, options))
    store.open()
    return store


def _stats(s: Stats) -> dict[str, Any]:
    return {
        "total": s.total_events,
        "users": s.unique_users,
        "workbooks": s.unique_workbooks,
        "sessions": s.unique_sessions,
        "first": s.first_event_at,
        "last": s.last_event_at,
        "types": s.by_event_type.to_pylist(),
        "top_users": s.top_users.to_pylist(),
        "top_workbooks": s.top_workbooks.to_pylist(),
    }


ORDERS: tuple[Order, ...] = ("asc", "desc")
WINDOWS = (
    EventFilter(),
    EventFilter(start=FEB, end=MAR),  # exactly February (archived)
    EventFilter(start=FEB - LAST_US, end=MAR + LAST_US),  # one microsecond past each edge
    EventFilter(
        start=dt.datetime(2024, 1, 20, 13, 30, tzinfo=UTC), end=dt.datetime(2024, 3, 9, 7, tzinfo=UTC)
    ),
    EventFilter(user_names=("CORP\\u1", "CORP\\edge0")),
    EventFilter(session_id="edge-b", event_types=("cell_change", "sheet_add")),
)


def _sessions_all(store: EventStore, flt: SessionFilter, limit: int) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after: tuple[dt.datetime, str] | None = None
    while True:
        page = store.sessions(flt, limit, after).to_pylist()
        seen += page
        if len(page) < limit:
            return seen
        after = (page[-1]["start_time"], page[-1]["session_id"])


def snapshot(store: EventStore, ids: list[str]) -> dict[str, Any]:
    """Every read the store answers over the test data, in comparable form."""
    snap: dict[str, Any] = {}
    for i, flt in enumerate(WINDOWS):
        snap[f"stats{i}"] = _stats(store.stats(flt, 3))
        snap[f"asc{i}"] = [r["event_id"] for r in page_all(store, flt, "asc", 17)]
        snap[f"desc{i}"] = page_all(store, flt, "desc", 41)
        for limit in (1, 60):
            for order in ORDERS:
                snap[f"end{i}/{limit}/{order}"] = store.page_end(flt, Page(limit=limit, order=order))
        snap[f"end{i}/cursor"] = store.page_end(
            flt, Page(limit=9, order="desc", after=Cursor(1_709_000_000_000_000, "z"))
        )
    for i, flt in enumerate(WINDOWS[:4]):
        for bucket, group in (
            ("hour", None),
            ("day", "workbook_name"),
            ("week", "event_type"),
            ("hour", "user_name"),
        ):
            snap[f"series{i}/{bucket}/{group}"] = store.timeseries(flt, bucket, group).to_pylist()  # type: ignore[arg-type]
    edge = EventFilter(start=MAR - dt.timedelta(hours=3), end=MAR + dt.timedelta(hours=2))
    snap["minutes"] = store.timeseries(edge, "minute", "event_type").to_pylist()
    for session_flt in (
        SessionFilter(),
        SessionFilter(user_name="CORP\\edge0"),
        SessionFilter(start=FEB, end=MAR),
        SessionFilter(start=MAR, end=MAR + LAST_US),
    ):
        for limit in (3, 50):
            snap[f"sessions{session_flt}/{limit}"] = _sessions_all(store, session_flt, limit)
    for sid in ("edge-a", "edge-b", "edge-c", "s-1", "s-3", "nope"):
        snap[f"session/{sid}"] = store.session(sid).to_pylist()
    for event_id in [*ids[::37], "00000000-0000-0000-0000-00000000ffff"]:
        snap[f"event/{event_id}"] = store.get_event(event_id).to_pylist()
    for cell in ("B1", "Z9", "Q1"):
        for limit in (1, 100):
            snap[f"cell/{cell}/{limit}"] = store.cell_history(
                "book1.xlsx" if cell != "Z9" else "book.xlsx", "Sheet1", cell, limit
            ).to_pylist()
    return snap
