"""The `EventStore` Protocol and the value types that cross it.

The Protocol is synchronous on purpose: both engines (DuckDB, embedded ClickHouse) are in-process
and blocking, so the API calls a store from worker threads and never from the event loop.
Results are Arrow tables; filters and pages are frozen dataclasses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import pyarrow as pa

__all__ = [
    "CELL_SETTING_TYPES",
    "MAX_SERIES_POINTS",
    "AppendResult",
    "Bucket",
    "Cursor",
    "EventFilter",
    "EventStore",
    "ExportResult",
    "GroupBy",
    "HealthCheck",
    "Order",
    "Page",
    "SessionFilter",
    "Stats",
]

#: Event types that set a cell's value and formula (what `cell_state` looks for).
CELL_SETTING_TYPES: tuple[str, ...] = ("cell_change", "formula_change", "range_change")
#: Default cap on the points (buckets x groups) of one time series.
MAX_SERIES_POINTS = 250_000
#: Default memory budget of an embedded engine (DuckDB's memory_limit, chdb's server memory), MiB.
ENGINE_MEMORY_MB = 512

Order = Literal["asc", "desc"]
Bucket = Literal["minute", "hour", "day", "week"]
GroupBy = Literal["event_type", "user_name", "workbook_name"]


@dataclass(frozen=True, slots=True)
class EventFilter:
    """The contract's read filters; empty tuples and None mean "no constraint".

    `start` is inclusive, `end` exclusive; both are timezone-aware UTC. `text` is a substring of
    old_value, new_value or formula. Multi-valued fields match any of their values.
    """

    start: dt.datetime | None = None
    end: dt.datetime | None = None
    event_types: tuple[str, ...] = ()
    user_names: tuple[str, ...] = ()
    workbook_names: tuple[str, ...] = ()
    sheet_names: tuple[str, ...] = ()
    machine_name: str | None = None
    session_id: str | None = None
    correlation_id: str | None = None
    cell_address: str | None = None
    text: str | None = None
    #: Only events outside the log or among its first `leaves_before` leaves (an export's
    #: snapshot: what its checkpoint covers). Not a read parameter of the API.
    leaves_before: int | None = None


@dataclass(frozen=True, slots=True)
class Cursor:
    """Keyset position: the last row returned, by (timestamp, event_id)."""

    timestamp_us: int
    event_id: str


@dataclass(frozen=True, slots=True)
class Page:
    """Which slice of an ordered result to return: rows strictly after `after` in `order`."""

    limit: int = 100
    order: Order = "desc"
    after: Cursor | None = None


@dataclass(frozen=True, slots=True)
class SessionFilter:
    """Sessions with at least one event in [start, end), optionally of one user.

    Figures of a matching session always cover the whole session, not only the window.
    """

    user_name: str | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """What an append did: rows newly stored and rows dropped as already stored (same event_id)."""

    stored: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class Stats:
    """The dashboard summary. The three tables are (key, count) sorted by count desc, key asc."""

    total_events: int
    unique_users: int
    unique_workbooks: int
    unique_sessions: int
    first_event_at: dt.datetime | None
    last_event_at: dt.datetime | None
    by_event_type: pa.Table
    top_users: pa.Table
    top_workbooks: pa.Table


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export: where it went and the manifest written beside the files."""

    destination: str
    manifest: dict[str, object]


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One component's state for /health; `detail` is shown to operators verbatim."""

    ok: bool
    detail: str = ""
    data: dict[str, object] = field(default_factory=dict)


@runtime_checkable
class EventStore(Protocol):
    """What every engine provides. Reads never show a duplicate event_id.

    Tables returned by `query`, `get_event` and `cell_history` are in `storage.schema.EVENT_SCHEMA`.
    """

    name: str

    def open(self) -> None:
        """Create or migrate what the store needs; idempotent."""

    def append(self, batch: pa.Table, /) -> AppendResult:
        """Store a batch durably before returning; rows whose event_id is stored are dropped."""

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """Matching events in (timestamp, event_id) order, at most `page.limit` rows."""

    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """The key of the page's last row when more rows follow it, else None (nothing materialised).

        What `query(flt, page)` would end on: a streamed read states its next cursor up front.
        """

    def get_event(self, event_id: str, /) -> pa.Table:
        """The event with that id: zero or one row."""

    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """Matching events with leaf_index > `after`, in leaf_index order, at most `limit` rows.

        The transparency log's leaf order is the total commit order of a single-writer store, so
        "every leaf after the last one seen" is exactly what a reader tailing the store missed
        (GET /api/events/stream). Bound it above with `flt.leaves_before` (the log's committed
        size) so that a commit still becoming visible is never read half. Events without a leaf
        (stored before the log, or by several writers) are never returned.
        """

    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """Every event on that exact cell, newest first."""

    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """Exact totals and top lists over the matching events."""

    def timeseries(
        self,
        flt: EventFilter,
        bucket: Bucket,
        group_by: GroupBy | None,
        max_points: int = MAX_SERIES_POINTS,
        /,
    ) -> pa.Table:
        """Columns ts (timestamp[us, UTC]), group (string, null without group_by), count (int64).

        Empty buckets between the first and last bucket (or the filter's bounds when given)
        appear with count 0 for every group present in the result. More than `max_points` rows
        (buckets x groups) raise InvalidQueryError before the zero-filled grid is built.
        """

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """Sessions newest first by (start_time, session_id), strictly after `after`.

        Columns: session_id, user_name, machine_name, start_time, end_time, duration_s (float64),
        event_count (int64), workbooks (list<string>, sorted, distinct, nulls left out).
        """

    def session(self, session_id: str, /) -> pa.Table:
        """One session in the `sessions` columns: zero or one row."""

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        """Write matching events as Parquet `year=YYYY/month=MM/` plus manifest.json."""

    def cell_state(
        self, workbook_name: str, sheet_name: str, cell_address: str, at: dt.datetime, /
    ) -> pa.Table:
        """The event that set that exact cell last as of `at`: zero or one row.

        "Set" means one of CELL_SETTING_TYPES at a timestamp <= `at`; the last is the greatest
        (timestamp, event_id), the order every read uses.
        """

    def workbook_state(
        self, workbook_name: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, /
    ) -> pa.Table:
        """`cell_state` of every cell of the workbook, in (sheet_name, cell_address) order.

        At most `limit` rows, each the setting event of one (sheet, cell) (both non-null), strictly
        after `after` in that order.
        """

    def session_numbers(self, session_id: str, /) -> pa.Table:
        """Columns session_seq (int64, null: the events sent without one), n, ends (int64).

        One row per distinct session_seq of the session's events: how many events carry it, and
        how many of those are session_end events. Empty when no event has that session id.
        """

    def session_seq_events(self, session_id: str, seqs: list[int], /) -> pa.Table:
        """The session's events numbered with one of `seqs`, in any order."""

    def health(self) -> HealthCheck:
        """Probe the engine for real; never raises."""

    def close(self) -> None:
        """Flush anything buffered and release the engine; idempotent."""
