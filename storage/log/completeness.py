"""Completeness per session: gaps in `session_seq`, numbers sent with two contents, session ends.

The add-in may number the events of a session 0, 1, 2 ... (`session_seq`, optional, so older
add-ins keep working). From the stored events alone this finds, per session:

- `missing`: the numbers below the highest one seen that never arrived, as [first, last] ranges
  (a hostile `session_seq` of 10**12 costs one range, not 10**12 rows);
- `conflicting_seq`: numbers carried by events of different content (content = every field but
  `event_id`, `received_at` and `batch_id`: a resend under a new id is not a conflict);
- `has_end`: whether a `session_end` arrived.

It is one SQL query over the events (a window `lag` for the gaps, `count(DISTINCT ...)` for the
conflicts) so a store can push it down: ParquetStore runs `COMPLETENESS_SQL` on its DuckDB
relation; ClickHouse needs `lagInFrame` for `lag`, `uniqExact(tuple(...))` for the distinct count
and `toJSONString(attributes)` for `to_json`. Here it runs in DuckDB over an Arrow table, which is
what `govtrack verify` does over an export.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "COMPLETENESS_SQL",
    "MAX_MISSING_RANGES",
    "NUMBERS_SCHEMA",
    "Completeness",
    "session_completeness",
    "session_numbers_completeness",
]

#: Reads a relation named `events`; one row per session_id (events without a session_id skipped).
COMPLETENESS_SQL: Final = """
WITH numbered AS (
    SELECT session_id, session_seq, event_type,
           (event_type, timestamp, user_name, machine_name, workbook_name, sheet_name, cell_address,
            old_value, new_value, formula, correlation_id, to_json(attributes)) AS content
    FROM events
    WHERE session_id IS NOT NULL
),
per_seq AS (
    SELECT session_id, session_seq, count(DISTINCT content) AS contents
    FROM numbered WHERE session_seq IS NOT NULL
    GROUP BY session_id, session_seq
),
gaps AS (
    SELECT session_id, session_seq, contents,
           coalesce(lag(session_seq) OVER (PARTITION BY session_id ORDER BY session_seq), -1) AS previous
    FROM per_seq
),
per_session AS (
    SELECT session_id,
           max(session_seq) AS max_seq,
           list({'first': previous + 1, 'last': session_seq - 1} ORDER BY session_seq)
               FILTER (WHERE session_seq - previous > 1) AS missing,
           coalesce(sum(session_seq - previous - 1) FILTER (WHERE session_seq - previous > 1), 0)
               AS missing_count,
           list(session_seq ORDER BY session_seq) FILTER (WHERE contents > 1) AS conflicting_seq
    FROM gaps GROUP BY session_id
),
ends AS (
    SELECT session_id, count(*) AS events, count(session_seq) AS numbered_events,
           bool_or(event_type = 'session_end') AS has_end
    FROM numbered GROUP BY session_id
)
SELECT ends.session_id, ends.events, ends.numbered_events, per_session.max_seq,
       coalesce(per_session.missing_count, 0)::BIGINT AS missing_count,
       coalesce(per_session.missing, []) AS missing,
       coalesce(per_session.conflicting_seq, []) AS conflicting_seq,
       ends.has_end
FROM ends LEFT JOIN per_session USING (session_id)
ORDER BY ends.session_id
"""

_NEEDED: Final = (
    "session_id",
    "event_type",
    "timestamp",
    "user_name",
    "machine_name",
    "workbook_name",
    "sheet_name",
    "cell_address",
    "old_value",
    "new_value",
    "formula",
    "correlation_id",
    "attributes",
)


def session_completeness(events: pa.Table | list[Path]) -> pa.Table:
    """Per session: events, numbered_events, max_seq, missing_count, missing, conflicting_seq, has_end.

    Args:
        events: an Arrow table in the event schema, or Parquet files of an export (read by
            DuckDB in a streaming scan, so a 10M-event archive is not loaded whole).

    `session_seq` may be absent (every session then reports no numbers); a negative number is
    never stored (the contract says >= 0) and is ignored here.
    """
    con = duckdb.connect()
    try:
        if isinstance(events, pa.Table):
            con.register("raw_events", events)
        else:
            con.read_parquet([str(f) for f in events], union_by_name=True).create_view("raw_events")
        names = {row[0] for row in con.execute("DESCRIBE raw_events").fetchall()}
        con.execute(_events_view(names))
        return con.sql(COMPLETENESS_SQL).to_arrow_table()
    finally:
        con.close()


def _events_view(names: set[str]) -> str:
    """The `events` relation: the needed columns (NULL where a file lacks one), checked numbers."""
    columns = [name if name in names else f"NULL::VARCHAR AS {name}" for name in _NEEDED]
    seq = (
        "CASE WHEN session_seq >= 0 THEN session_seq::BIGINT END"
        if "session_seq" in names
        else "NULL::BIGINT"
    )
    return f"CREATE TEMP VIEW events AS SELECT {', '.join(columns)}, {seq} AS session_seq FROM raw_events"


# -- the same figures for one session of a live store, pushed down per tier -------------------------

#: What a store's `session_numbers` returns: per distinct session_seq (null: unnumbered events),
#: how many events carry it and how many of those are session_end events.
NUMBERS_SCHEMA: Final = pa.schema([("session_seq", pa.int64()), ("n", pa.int64()), ("ends", pa.int64())])
#: Missing ranges reported per session at most (the count is always exact).
MAX_MISSING_RANGES: Final = 1000

_CONFLICTS_SQL: Final = """
SELECT session_seq FROM events GROUP BY session_seq
HAVING count(DISTINCT (event_type, timestamp, user_name, machine_name, workbook_name, sheet_name,
                       cell_address, old_value, new_value, formula, correlation_id, to_json(attributes))) > 1
ORDER BY session_seq
"""


@dataclass(frozen=True, slots=True)
class Completeness:
    """One session's completeness: the figures `session_completeness` gives for an export."""

    events: int
    numbered_events: int
    max_seq: int | None
    missing_count: int
    #: [first, last] ranges of numbers below max_seq that never arrived (at most MAX_MISSING_RANGES).
    missing: list[tuple[int, int]]
    conflicting_seq: list[int]
    has_end: bool


def session_numbers_completeness(
    numbers: list[pa.Table], events_of: Callable[[list[int]], pa.Table]
) -> Completeness:
    """Completeness of one session from its tiers' `session_numbers`.

    `events_of(seqs)` reads the events of numbers that occur more than once (to tell a resend
    from a conflict), which is rare. Exact across tiers: counts add up per number, and contents are compared on the events
    themselves, never on an engine-specific hash.
    """
    table = (
        pa.concat_tables([t.cast(NUMBERS_SCHEMA) for t in numbers])
        if numbers
        else NUMBERS_SCHEMA.empty_table()
    )
    if table.num_rows:
        grouped = table.group_by("session_seq", use_threads=False).aggregate([("n", "sum"), ("ends", "sum")])
        table = grouped.select(["session_seq", "n_sum", "ends_sum"]).rename_columns(
            ["session_seq", "n", "ends"]
        )
    events = int(pc.sum(table.column("n")).as_py() or 0)
    has_end = bool((pc.sum(table.column("ends")).as_py() or 0) > 0)
    numbered = table.filter(pc.fill_null(pc.greater_equal(table.column("session_seq"), 0), False))
    order = np.argsort(numbered.column("session_seq").to_numpy(zero_copy_only=False), kind="stable")
    seqs = numbered.column("session_seq").to_numpy(zero_copy_only=False)[order]
    counts = numbered.column("n").to_numpy(zero_copy_only=False)[order]
    previous = np.concatenate(([-1], seqs[:-1])) if len(seqs) else seqs
    gaps = np.flatnonzero(seqs - previous > 1)
    missing = [(int(previous[i]) + 1, int(seqs[i]) - 1) for i in gaps[:MAX_MISSING_RANGES].tolist()]
    missing_count = int((seqs[gaps] - previous[gaps] - 1).sum()) if len(gaps) else 0
    repeated = seqs[counts > 1].tolist()
    conflicting: list[int] = []
    if repeated:
        con = duckdb.connect()
        try:
            con.register("events", events_of([int(s) for s in repeated]))
            conflicting = [int(row[0]) for row in con.sql(_CONFLICTS_SQL).fetchall()]
        finally:
            con.close()
    return Completeness(
        events=events,
        numbered_events=int(counts.sum()) if len(counts) else 0,
        max_seq=int(seqs[-1]) if len(seqs) else None,
        missing_count=missing_count,
        missing=missing,
        conflicting_seq=conflicting,
        has_end=has_end,
    )
