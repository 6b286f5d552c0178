"""Per-file rollups of the Parquet store: exact counts kept inside every data file, for /stats.

Why: an exact dashboard over 10 M events must not rescan 10 M rows (the distinct-session count
alone dominates). Every data file carries, in its Parquet footer (key ROLLUP_KEY), the rollup of
its rows: the event count per event_type, user_name, workbook_name and session_id. Being part of
the file, it is written, fsync'd and committed with it (no extra file, no extra fsync on the
append path) and can never be missing or stale; compaction writes the merged rollup of its inputs
into the merged file. A file without one (written by other tools) is rolled up on first use.
Files never share an event_id (dedup at write; compaction only moves rows), so summing rollups of
whole files is exact, and distinct keys are counted over the union.

Stats over a time range use the rollups of files wholly inside it and scan only the boundary files
(storage.parquet.queries.stats_groups), whose grouped rows have the same shape as a rollup.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "DIMS",
    "ROLLUP_KEY",
    "ROLLUP_SCHEMA",
    "RollupCache",
    "Summary",
    "decode",
    "encode",
    "merge",
    "rollup_of",
    "split",
    "summarize",
]

#: Rollup dimensions, by code (the `dim` column). Session ids are only ever counted distinct.
#: HOURLY rows count events per (UTC hour start in `hour`, event_type in `key`), for timeseries.
DIMS = ("event_type", "user_name", "workbook_name", "session_id")
EVENT_TYPE, USER, WORKBOOK, SESSION, HOURLY = range(5)
ROLLUP_SCHEMA = pa.schema(
    [("dim", pa.int8()), ("key", pa.string()), ("count", pa.int64()), ("hour", pa.int64())]
)
ROLLUP_KEY = b"govtrack.rollup"


def rollup_of(table: pa.Table) -> pa.Table:
    """The rollup of some events: (dim, key, count) per non-null key of every dimension."""
    parts = []
    for code, column in enumerate(DIMS):
        grouped = table.select([column]).group_by(column, use_threads=False).aggregate([([], "count_all")])
        grouped = grouped.filter(pc.is_valid(grouped.column(column)))
        dim = pa.array([code] * grouped.num_rows, pa.int8())
        hour = pa.nulls(grouped.num_rows, pa.int64())
        columns = [dim, grouped.column(column), grouped.column("count_all"), hour]
        parts.append(pa.table(columns, schema=ROLLUP_SCHEMA))
    hours = pc.floor_temporal(table.column("timestamp"), 1, "hour").cast(pa.int64())
    pairs = pa.table({"hour": hours, "key": table.column("event_type")})
    hourly = pairs.group_by(["hour", "key"], use_threads=False).aggregate([([], "count_all")])
    dim = pa.array([HOURLY] * hourly.num_rows, pa.int8())
    columns = [dim, hourly.column("key"), hourly.column("count_all"), hourly.column("hour")]
    parts.append(pa.table(columns, schema=ROLLUP_SCHEMA))
    return pa.concat_tables(parts).combine_chunks()


def merge(rollups: Iterable[pa.Table]) -> pa.Table:
    """One rollup for the union of disjoint event sets (compaction's merged file)."""
    table = pa.concat_tables(list(rollups))
    if table.num_rows == 0:
        return ROLLUP_SCHEMA.empty_table()
    summed = table.group_by(["dim", "key", "hour"], use_threads=False).aggregate([("count", "sum")])
    columns = [summed.column("dim"), summed.column("key"), summed.column("count_sum"), summed.column("hour")]
    return pa.table(columns, schema=ROLLUP_SCHEMA).sort_by([("dim", "ascending")])


def encode(rollup: pa.Table) -> bytes:
    """Footer value of a rollup: base64 of a zstd-compressed Arrow IPC stream."""
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, ROLLUP_SCHEMA, options=options) as writer:
        writer.write_table(rollup.cast(ROLLUP_SCHEMA))
    return base64.b64encode(sink.getvalue().to_pybytes())


def decode(value: bytes) -> pa.Table:
    """Inverse of `encode`."""
    return pa.ipc.open_stream(pa.py_buffer(base64.b64decode(value))).read_all()


def read_rollup(path: Path) -> pa.Table:
    """The rollup in a data file's footer, or one computed from its rows if it has none.

    A rollup of another layout (an older ROLLUP_SCHEMA) is recomputed the same way.
    """
    metadata = pq.read_metadata(path).metadata or {}
    if ROLLUP_KEY in metadata:
        rollup = decode(metadata[ROLLUP_KEY])
        if rollup.schema.equals(ROLLUP_SCHEMA):
            return rollup
    return rollup_of(pq.read_table(path, columns=[*DIMS, "timestamp"]))


#: A rollup split by dimension (index = dim code), as summarize wants it.
Parts = tuple[pa.Table, ...]


def split(rollup: pa.Table) -> Parts:
    """A rollup's rows per dimension code (0..HOURLY)."""
    dims = rollup.column("dim")
    return tuple(rollup.filter(pc.equal(dims, pa.scalar(code, pa.int8()))) for code in range(HOURLY + 1))


class RollupCache:
    """Rollups read once per file and kept in memory, whole and split by dimension.

    Files are immutable, so an entry never goes stale; it is dropped once its file is retired.
    """

    def __init__(self, root: Path) -> None:
        self._root = root
        self._lock = threading.Lock()
        self._tables: dict[str, tuple[pa.Table, Parts]] = {}

    def put(self, data_path: str, rollup: pa.Table) -> None:
        """Remember the rollup of a file this process just wrote."""
        entry = (rollup, split(rollup))
        with self._lock:
            self._tables[data_path] = entry

    def _entry(self, data_path: str) -> tuple[pa.Table, Parts]:
        with self._lock:
            cached = self._tables.get(data_path)
        if cached is None:
            self.put(data_path, read_rollup(self._root / data_path))
            with self._lock:
                cached = self._tables[data_path]
        return cached

    def get(self, data_path: str) -> pa.Table:
        """The rollup of a live data file."""
        return self._entry(data_path)[0]

    def parts(self, data_path: str) -> Parts:
        """The rollup of a live data file, split by dimension."""
        return self._entry(data_path)[1]

    def keep_only(self, live: Iterable[str]) -> None:
        """Forget files that are no longer live (after compaction retired them)."""
        keep = set(live)
        with self._lock:
            self._tables = {k: v for k, v in self._tables.items() if k in keep}


@dataclass(frozen=True, slots=True)
class Summary:
    """The exact figures of `Stats` except the time range."""

    total_events: int
    unique_users: int
    unique_workbooks: int
    unique_sessions: int
    by_event_type: pa.Table
    top_users: pa.Table
    top_workbooks: pa.Table


def _ranked(parts: list[pa.Table], name: str) -> pa.Table:
    """(key, summed count) per distinct key, sorted count desc then key asc."""
    table = pa.concat_tables(parts) if parts else ROLLUP_SCHEMA.empty_table()
    summed = table.group_by("key", use_threads=False).aggregate([("count", "sum")])
    ranked = pa.table({name: summed.column("key"), "count": summed.column("count_sum").cast(pa.int64())})
    return ranked.sort_by([("count", "descending"), (name, "ascending")])


def summarize(rollups: list[Parts], top: int) -> Summary:
    """Exact totals, distinct counts and top lists from rollups of disjoint event sets."""
    types, users, books = (_ranked([r[c] for r in rollups], DIMS[c]) for c in (EVENT_TYPE, USER, WORKBOOK))
    sessions = pa.chunked_array([c for r in rollups for c in r[SESSION].column("key").chunks], pa.string())
    unique_sessions = pc.count_distinct(sessions).as_py()
    return Summary(
        total_events=int(pc.sum(types.column("count")).as_py() or 0),
        unique_users=users.num_rows,
        unique_workbooks=books.num_rows,
        unique_sessions=unique_sessions,
        by_event_type=types,
        top_users=users.slice(0, top),
        top_workbooks=books.slice(0, top),
    )
