"""Event builders and plain-Python oracles shared by the store contract tests."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pyarrow as pa

from storage.base import Cursor, EventFilter, EventStore, Page
from storage.schema import EVENT_SCHEMA

BASE = dt.datetime(2024, 3, 10, 12, 0, tzinfo=dt.UTC)
Row = dict[str, Any]


def eid(i: int) -> str:
    """A canonical UUID text that sorts like `i`."""
    return str(uuid.UUID(int=i))


def event(i: int, **fields: Any) -> Row:
    """One event row in EVENT_SCHEMA with plausible defaults; `fields` override them."""
    row: Row = {
        "event_id": eid(i),
        "timestamp": BASE + dt.timedelta(minutes=i),
        "event_type": "cell_change",
        "user_name": "CORP\\alice",
        "machine_name": "PC-1",
        "session_id": "s-1",
        "workbook_name": "book.xlsx",
        "sheet_name": "Sheet1",
        "cell_address": f"A{i}",
        "old_value": "",
        "new_value": str(i),
        "formula": None,
        "correlation_id": None,
        "attributes": [],
        "received_at": BASE,
        "batch_id": "batch-1",
    }
    row.update(fields)
    return row


def table(rows: list[Row]) -> pa.Table:
    """Rows as an EVENT_SCHEMA table."""
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


def varied(n: int = 60) -> list[Row]:
    """A dataset exercising every filterable column, nulls, ties in timestamp and two months."""
    users = ["CORP\\alice", "CORP\\bob", "CORP\\carol"]
    rows = []
    for i in range(1, n + 1):
        rows.append(
            event(
                i,
                timestamp=BASE + dt.timedelta(hours=7 * (i // 2)),  # pairs share a timestamp
                event_type=["cell_change", "formula_change", "workbook_open", "macro_run"][i % 4],
                user_name=users[i % 3],
                machine_name=None if i % 5 == 0 else f"PC-{i % 2}",
                session_id=None if i % 7 == 0 else f"s-{i % 6}",
                workbook_name=None if i % 11 == 0 else f"book{i % 4}.xlsx",
                sheet_name=f"Sheet{i % 3}",
                cell_address=f"B{i % 5}",
                old_value=None if i % 2 else f"old Total {i}",
                new_value=f"new {i}" if i % 3 else "",
                formula="=SUM(A1:A9)" if i % 4 == 0 else None,
                correlation_id=f"c-{i % 2}",
            )
        )
    return rows


def matches(row: Row, flt: EventFilter) -> bool:
    """The contract's filter semantics, in plain Python."""
    checks = [
        flt.start is None or row["timestamp"] >= flt.start,
        flt.end is None or row["timestamp"] < flt.end,
        not flt.event_types or row["event_type"] in flt.event_types,
        not flt.user_names or row["user_name"] in flt.user_names,
        not flt.workbook_names or row["workbook_name"] in flt.workbook_names,
        not flt.sheet_names or row["sheet_name"] in flt.sheet_names,
    ]
    for name in ("machine_name", "session_id", "correlation_id", "cell_address"):
        value = getattr(flt, name)
        checks.append(value is None or row[name] == value)
    if flt.text is not None:
        checks.append(any(flt.text in (row[c] or "") for c in ("old_value", "new_value", "formula")))
    return all(checks)


def micros(ts: dt.datetime) -> int:
    """Epoch microseconds of an aware datetime."""
    return (ts - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def page_all(store: EventStore, flt: EventFilter, order: str = "desc", limit: int = 7) -> list[Row]:
    """Follow keyset pages until exhausted; returns every row seen, in order."""
    seen: list[Row] = []
    after: Cursor | None = None
    while True:
        page = store.query(flt, Page(limit=limit, order=order, after=after)).to_pylist()  # type: ignore[arg-type]
        seen.extend(page)
        if len(page) < limit:
            return seen
        after = Cursor(micros(page[-1]["timestamp"]), page[-1]["event_id"])
