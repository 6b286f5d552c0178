"""Check that every read and figure agrees with the plain-Python oracle over the stored events.

`assert_agrees(reader, expected)` is what a crash test calls after a restart: the stored ids are
exactly the expected ones, each once, and stats (unfiltered, over whole hours, over a window cut
inside an hour), hour time series by every group, and every session equal tests.contract.oracle
over `expected`. The windows are chosen so that both stores take their rollup paths and their
scanning paths. A reader is a store (`StoreReader`, in process) or the HTTP API
(tests.e2e.http_reader.HttpReader): the same checks, either way in.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any, Protocol

import pyarrow as pa

from storage.base import EventFilter, EventStore, GroupBy, SessionFilter, Stats
from tests.contract.events import Row, matches, page_all
from tests.contract.oracle import HOUR, figures, hour_series

__all__ = ["FigureReader", "StoreReader", "assert_agrees", "assert_store_agrees", "stored_rows"]

GROUPS: tuple[GroupBy | None, ...] = (None, "event_type", "user_name", "workbook_name")
SESSION_FIELDS = ("user_name", "machine_name", "start_time", "end_time", "event_count", "workbooks")


class FigureReader(Protocol):
    """What the checks read: rows with the oracle's fields, figures in the store's shapes."""

    def rows(self) -> list[Row]: ...

    def stats(self, flt: EventFilter, top: int) -> Stats: ...

    def hour_series(self, flt: EventFilter, group_by: GroupBy | None) -> list[dict[str, Any]]: ...

    def sessions(self) -> list[dict[str, Any]]: ...

    def session(self, session_id: str) -> list[dict[str, Any]]: ...


def stored_rows(store: EventStore) -> list[Row]:
    """Every event the store's reads return, oldest first (a duplicate would show twice)."""
    return page_all(store, EventFilter(), order="asc", limit=5000)


class StoreReader:
    """A FigureReader over a store object, in process."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def rows(self) -> list[Row]:
        return stored_rows(self.store)

    def stats(self, flt: EventFilter, top: int) -> Stats:
        return self.store.stats(flt, top)

    def hour_series(self, flt: EventFilter, group_by: GroupBy | None) -> list[dict[str, Any]]:
        points: list[dict[str, Any]] = self.store.timeseries(flt, "hour", group_by).to_pylist()
        return points

    def sessions(self) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = []
        after: tuple[dt.datetime, str] | None = None
        while True:
            page = self.store.sessions(SessionFilter(), 50, after).to_pylist()
            seen += page
            if len(page) < 50:
                return seen
            after = (page[-1]["start_time"], page[-1]["session_id"])

    def session(self, session_id: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.store.session(session_id).to_pylist()
        return found


def _pairs(t: pa.Table) -> list[tuple[str, int]]:
    key, count = t.column_names
    return list(zip(t.column(key).to_pylist(), t.column(count).to_pylist(), strict=True))


def _windows(rows: list[Row]) -> list[EventFilter]:
    if not rows:
        return [EventFilter()]
    lo = min(r["timestamp"] for r in rows).replace(minute=0, second=0, microsecond=0)
    hi = max(r["timestamp"] for r in rows)
    mid = lo + (hi - lo) / 2
    return [
        EventFilter(),
        EventFilter(start=lo + HOUR, end=hi.replace(minute=0, second=0, microsecond=0) + HOUR),
        EventFilter(start=mid, end=hi + dt.timedelta(microseconds=1)),
    ]


def _check_stats(reader: FigureReader, rows: list[Row], problems: list[str]) -> None:
    for flt in _windows(rows):
        want = figures([r for r in rows if matches(r, flt)], top=5)
        got = reader.stats(flt, 5)
        pairs = {
            "total_events": (got.total_events, want.total_events),
            "unique_users": (got.unique_users, want.unique_users),
            "unique_workbooks": (got.unique_workbooks, want.unique_workbooks),
            "unique_sessions": (got.unique_sessions, want.unique_sessions),
            "first_event_at": (got.first_event_at, want.first_event_at),
            "last_event_at": (got.last_event_at, want.last_event_at),
            "by_event_type": (_pairs(got.by_event_type), want.by_event_type),
            "top_users": (_pairs(got.top_users), want.top_users),
            "top_workbooks": (_pairs(got.top_workbooks), want.top_workbooks),
        }
        problems += [f"stats {flt} {k}: {g} != {w}" for k, (g, w) in pairs.items() if g != w]


def _check_series(reader: FigureReader, rows: list[Row], problems: list[str]) -> None:
    for flt in _windows(rows)[:2]:
        sel = [r for r in rows if matches(r, flt)]
        for group_by in GROUPS:
            got = reader.hour_series(flt, group_by)
            nonzero = {(p["ts"], p["group"]): p["count"] for p in got if p["count"]}
            want = hour_series(sel, group_by)
            if nonzero != want:
                diff = sorted(set(nonzero.items()) ^ set(want.items()), key=str)
                problems.append(f"timeseries {flt} by {group_by}: {len(diff)} differ, e.g. {diff[:2]}")


def _check_sessions(reader: FigureReader, rows: list[Row], problems: list[str]) -> None:
    want = figures(rows).sessions
    counts = Counter(s["session_id"] for s in reader.sessions())
    if set(counts) != set(want) or max(counts.values(), default=1) > 1:
        problems.append(f"sessions listed {dict(counts)} != {sorted(want)}")
    for sid, expected in want.items():
        got = reader.session(sid)
        if len(got) != 1:
            problems.append(f"session {sid}: {len(got)} rows")
            continue
        actual = tuple(got[0][f] if f != "workbooks" else tuple(got[0][f]) for f in SESSION_FIELDS)
        wanted = tuple(getattr(expected, f) for f in SESSION_FIELDS)
        if actual != wanted:
            problems.append(f"session {sid}: {actual} != {wanted}")


def assert_agrees(reader: FigureReader, expected: list[Row]) -> None:
    """Stored ids == expected ids (each once), and every figure equals the oracle's (see module)."""
    ids = Counter(r["event_id"] for r in reader.rows())
    twice = [i for i, n in ids.items() if n > 1]
    assert not twice, f"{len(twice)} events read more than once, e.g. {twice[:3]}"
    missing = {r["event_id"] for r in expected} - set(ids)
    extra = set(ids) - {r["event_id"] for r in expected}
    assert (len(missing), len(extra)) == (0, 0), (
        f"missing e.g. {sorted(missing)[:3]}, unexpected e.g. {sorted(extra)[:3]}"
    )
    problems: list[str] = []
    _check_stats(reader, expected, problems)
    _check_series(reader, expected, problems)
    _check_sessions(reader, expected, problems)
    assert not problems, "\n".join(problems[:20])


def assert_store_agrees(store: EventStore, expected: list[Row]) -> None:
    """assert_agrees over a store object."""
    assert_agrees(StoreReader(store), expected)
