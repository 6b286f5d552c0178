"""DuckDB statements of the archive tier, and of the Parquet store's tier methods.

Everything else the archive reads with storage.parquet.queries (the same DuckDB over Parquet).
Values are always bound as parameters (`$files`, `$pN`).
"""

from __future__ import annotations

from typing import Final

from storage.base import EventFilter
from storage.parquet.queries import EVENT_COLUMNS, Query, source, where

__all__ = [
    "FINGERPRINT_SQL",
    "Query",
    "fingerprint",
    "id_hits",
    "month_rows",
    "session_ids",
    "session_partials",
]

#: The fingerprint aggregate of storage.archive.fingerprint over a relation with `event_id`.
FINGERPRINT_SQL: Final = "coalesce(sum((md5_number(event_id) & 18446744073709551615::UHUGEINT)::HUGEINT), 0)"


def fingerprint(files: list[str]) -> Query:
    """Row count and fingerprint (un-reduced sum) of the events in `files`."""
    q = Query()
    q.sql = f"SELECT count(*) AS n, {FINGERPRINT_SQL} AS fp FROM {source(files, q)}"
    return q


def id_hits(files: list[str], ids: list[str]) -> Query:
    """Which of `ids` `files` hold (the bloom filters on event_id skip most row groups)."""
    q = Query()
    q.sql = (
        f"SELECT DISTINCT event_id FROM {source(files, q)} "
        f"WHERE event_id IN (SELECT unnest({q.bind(ids)}::VARCHAR[]))"
    )
    return q


def session_ids(files: list[str], flt: EventFilter) -> Query:
    """Distinct non-null session ids of the matching events."""
    q = Query()
    preds = [*where(flt, q), "session_id IS NOT NULL"]
    q.sql = f"SELECT DISTINCT session_id FROM {source(files, q)} WHERE {' AND '.join(preds)}"
    return q


def session_partials(files: list[str], ids: list[str]) -> Query:
    """Per session of `ids`: its figures over `files`, with its first event's key (first_us, first_event_id)."""
    q = Query()
    first = "ORDER BY timestamp, event_id"
    q.sql = (
        f"SELECT session_id, first(epoch_us(timestamp) {first}) AS first_us, "
        f"first(event_id {first}) AS first_event_id, first(user_name {first}) AS user_name, "
        f"first(machine_name {first}) AS machine_name, min(timestamp) AS start_time, "
        "max(timestamp) AS end_time, count(*) AS event_count, "
        "coalesce(list_sort(list_distinct(list(workbook_name))), []::VARCHAR[]) AS workbooks "
        f"FROM {source(files, q)} WHERE session_id IN (SELECT unnest({q.bind(ids)}::VARCHAR[])) "
        "GROUP BY session_id"
    )
    return q


def month_rows(files: list[str]) -> Query:
    """Every event of `files` in (timestamp, event_id) order: one sort (spilled past DuckDB's memory limit).

    The archive mover reads a whole month this way: keyset pages would each scan the month again,
    since compacted files are clustered by cell, not by time (storage.parquet.compaction).
    """
    q = Query()
    q.sql = f"SELECT {EVENT_COLUMNS} FROM {source(files, q)} ORDER BY timestamp, event_id"
    return q
