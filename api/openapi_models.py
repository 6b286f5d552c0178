"""Response bodies of the read routes, as pydantic models for the published schema only.

The routes build their JSON column-wise (api.formats) and return it as is: these models document
that JSON (routes list them in `responses=`), they are never used to validate or serialise it, so
declaring them costs nothing per request. Timestamps are ISO-8601 UTC with `Z`, microseconds.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "CellAsOf",
    "CellChange",
    "CellHistory",
    "CellState",
    "Event",
    "EventsPage",
    "ExportManifest",
    "Session",
    "SessionDetail",
    "Stats",
    "Timeseries",
    "WorkbookState",
]


class Event(BaseModel):
    """A stored event; numbers and booleans of old/new_value come back as their JSON text."""

    event_id: str
    timestamp: dt.datetime
    event_type: str
    user_name: str
    machine_name: str | None
    session_id: str | None
    workbook_name: str | None
    sheet_name: str | None
    cell_address: str | None
    old_value: str | None
    new_value: str | None
    formula: str | None
    correlation_id: str | None
    attributes: dict[str, Any] = Field(description="extra input fields, original key -> JSON value")
    received_at: dt.datetime
    batch_id: str
    session_seq: int | None = Field(description="the add-in's number of the event in its session")
    leaf_index: int | None = Field(
        description="the event's position in the transparency log (null: stored before the log, or no log)"
    )
    leaf_hash: str | None = Field(description="hex SHA-256(0x00 || canonical event), docs/canonical-event.md")


class EventsPage(BaseModel):
    """One page of a read; follow `next_cursor` (null on the last page)."""

    events: list[Event]
    next_cursor: str | None


class CellChange(BaseModel):
    """One change of a cell: who, when, old -> new value, formula."""

    event_id: str
    timestamp: dt.datetime
    user_name: str
    event_type: str
    old_value: str | None
    new_value: str | None
    formula: str | None
    session_id: str | None
    machine_name: str | None
    leaf_index: int | None


class CellState(BaseModel):
    """A cell as of `at`: the value and formula the last setting event wrote, and that event."""

    workbook_name: str
    sheet_name: str
    cell_address: str
    at: dt.datetime
    value: str | None
    formula: str | None
    event: Event | None = Field(description="the event that set them; null when nothing set the cell by `at`")


class CellAsOf(BaseModel):
    """One cell of a workbook as of `at` and the event that set it."""

    sheet_name: str
    cell_address: str
    value: str | None
    formula: str | None
    event_id: str
    event_type: str
    timestamp: dt.datetime
    user_name: str
    leaf_index: int | None


class WorkbookState(BaseModel):
    """Every known cell of a workbook as of `at`, in (sheet_name, cell_address) order."""

    workbook_name: str
    at: dt.datetime
    cells: list[CellAsOf]
    next_cursor: str | None


class CellHistory(BaseModel):
    """Every change of one cell, newest first."""

    workbook_name: str
    sheet_name: str
    cell_address: str
    changes: list[CellChange]


class EventTypeCount(BaseModel):
    """Events of one type."""

    event_type: str
    count: int


class UserCount(BaseModel):
    """Events of one user."""

    user_name: str
    count: int


class WorkbookCount(BaseModel):
    """Events in one workbook."""

    workbook_name: str
    count: int


class Stats(BaseModel):
    """Exact figures over the matching events; lists sorted count desc, then key asc."""

    total_events: int
    unique_users: int
    unique_workbooks: int
    unique_sessions: int
    first_event_at: dt.datetime | None
    last_event_at: dt.datetime | None
    by_event_type: list[EventTypeCount]
    top_users: list[UserCount]
    top_workbooks: list[WorkbookCount]


class Point(BaseModel):
    """One bucket of one series (group null without group_by)."""

    ts: dt.datetime
    count: int
    group: str | None


class Timeseries(BaseModel):
    """Counts per bucket, zero-filled, ordered by ts then group."""

    bucket: Literal["minute", "hour", "day", "week"]
    series: list[Point]


class Session(BaseModel):
    """A session's figures; user and machine of its first event."""

    session_id: str
    user_name: str | None
    machine_name: str | None
    start_time: dt.datetime
    end_time: dt.datetime
    duration_s: float | None
    event_count: int
    workbooks: list[str]


class MissingRange(BaseModel):
    """Consecutive session_seq numbers that never arrived."""

    first: int
    last: int


class SessionDetail(Session):
    """One session's figures and its completeness (from the optional `session_seq`)."""

    max_seq: int | None = Field(description="the highest session_seq received (null: none numbered)")
    missing_count: int = Field(description="how many numbers below max_seq never arrived")
    missing_seq: list[MissingRange] = Field(description="those numbers as ranges (at most 1000 ranges)")
    conflicting_seq: list[int] = Field(description="numbers received with two different contents")
    has_end: bool = Field(description="whether a session_end event arrived")


class ExportFile(BaseModel):
    """One written Parquet file."""

    path: str
    rows: int
    sha256: str


class ExportManifest(BaseModel):
    """manifest.json of an export, and where it was written."""

    rows: int
    files: list[ExportFile]
    schema_: list[dict[str, Any]] = Field(alias="schema")
    destination: str
