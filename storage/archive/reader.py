"""The archive tier's reads: DuckDB over the files the months' newest manifests list.

The archive is read with the Parquet store's own statements (storage.parquet.queries), so a figure
means the same in both. Only files that a committed manifest lists are ever read (orphans of a
crashed or losing move never count), and files are chosen by their manifest time range before
DuckDB opens them. Exact statistics of files wholly inside a time-only filter come from the
rollups in their footers (read once per file and cached: files are immutable); only boundary files
are scanned. Remote files (S3, Azure) are read through the location's fsspec wrapper.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.archive import queries as archive_sql
from storage.archive.location import Location
from storage.archive.manifest import (
    FileEntry,
    ManifestError,
    MonthManifest,
    manifest_generation,
    month_of_dir,
)
from storage.archive.sessions import PARTIAL_SCHEMA
from storage.base import Bucket, Cursor, EventFilter, GroupBy, Page, SessionFilter
from storage.errors import TerminalStoreError
from storage.log.completeness import NUMBERS_SCHEMA
from storage.parquet import queries as sql
from storage.parquet import series
from storage.parquet.rollup import ROLLUP_KEY, ROLLUP_SCHEMA, Parts, decode, rollup_of, split
from storage.schema import EVENT_SCHEMA

__all__ = ["ArchiveReader", "scan_manifests"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _us(value: dt.datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // dt.timedelta(microseconds=1)


def scan_manifests(location: Location) -> tuple[dict[int, MonthManifest], dict[int, list[str]]]:
    """The newest manifest of every month, and every file name found in each month's directory.

    Raises ManifestError when a month's newest manifest cannot be trusted.
    """
    listing: dict[int, list[str]] = {}
    for rel in location.list_files():
        directory, _, name = rel.rpartition("/")
        month = month_of_dir(directory)
        if month is not None:
            listing.setdefault(month, []).append(name)
    newest: dict[int, MonthManifest] = {}
    for month, names in sorted(listing.items()):
        gens = [g for g in (manifest_generation(n) for n in names) if g is not None]
        if gens:
            rel = f"year={month // 100:04d}/month={month % 100:02d}/_manifest-g{max(gens):06d}.json"
            try:
                manifest = MonthManifest.from_json(location.read_bytes(rel))
            except ManifestError as exc:  # named, so an operator knows which file to look at
                raise ManifestError(f"{rel}: {exc}") from exc
            if manifest.month != month or manifest.generation != max(gens):
                raise ManifestError(f"{rel} names month {manifest.month} generation {manifest.generation}")
            newest[month] = manifest
    return newest, listing


class ArchiveReader:
    """Reads over the committed archive; `refresh` after anything commits or deletes."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._lock = threading.Lock()
        self._months: dict[int, MonthManifest] = {}
        self._rollups: dict[str, Parts] = {}
        self._sessions: set[str] | None = None
        self._leaf_end: tuple[int, int] | None = None  # (version, one past the highest leaf)
        self.version = 0
        self._con = duckdb.connect(":memory:")
        self._con.execute("SET GLOBAL parquet_metadata_cache = true")
        self._con.register("_empty_arrow", EVENT_SCHEMA.empty_table())
        self._con.execute(f"CREATE TABLE {sql.EMPTY_TABLE} AS SELECT * FROM _empty_arrow")
        self._con.unregister("_empty_arrow")
        if not location.is_local:
            self._con.register_filesystem(location.duckdb_filesystem())

    def close(self) -> None:
        """Release DuckDB."""
        self._con.close()

    # -- the committed state ----------------------------------------------------------------------

    def refresh(self) -> dict[int, MonthManifest]:
        """Load every month's newest manifest again; returns the served months."""
        newest, _ = scan_manifests(self.location)
        served = {m: man for m, man in newest.items() if man.files}
        with self._lock:
            self._months = served
            self._sessions = None
            self.version += 1
        return served

    def months(self) -> dict[int, MonthManifest]:
        """The months the archive serves (newest manifest not a deletion), by YYYYMM."""
        with self._lock:
            return dict(self._months)

    def files(self, start: dt.datetime | None = None, end: dt.datetime | None = None) -> list[FileEntry]:
        """Committed files whose time range overlaps [start, end)."""
        lo, hi = _us(start), _us(end)
        return [
            f
            for m in self.months().values()
            for f in m.files
            if (lo is None or f.max_us >= lo) and (hi is None or f.min_us < hi)
        ]

    def bounds(self) -> tuple[int, int] | None:
        """The archived events' time range (µs), None when nothing is archived."""
        files = self.files()
        return (min(f.min_us for f in files), max(f.max_us for f in files)) if files else None

    def overlaps(self, start: dt.datetime | None, end: dt.datetime | None) -> bool:
        """Whether any archived file may hold an event in [start, end)."""
        return bool(self.files(start, end))

    def _paths(self, files: list[FileEntry]) -> list[str]:
        return [self.location.duckdb_path(f.path) for f in files]

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _table(self, q: sql.Query) -> pa.Table:
        with self._cursor() as cur:
            return cur.sql(q.sql, params=q.params).to_arrow_table()

    # -- reads (the Parquet store's statements over archive files) --------------------------------

    def query(self, flt: EventFilter, page: Page) -> pa.Table:
        """A keyset page of matching archived events."""
        paths = self._paths(self.files(flt.start, flt.end))
        if not paths:
            return EVENT_SCHEMA.empty_table()
        return self._table(sql.events_page(paths, flt, page.limit, page.order, page.after)).cast(EVENT_SCHEMA)

    def after_leaf(self, flt: EventFilter, after: int, limit: int) -> pa.Table:
        """Matching archived events after leaf `after`, in leaf order."""
        paths = self._paths(self.files(flt.start, flt.end))
        if not paths:
            return EVENT_SCHEMA.empty_table()
        return self._table(sql.after_leaf(paths, flt, after, limit)).cast(EVENT_SCHEMA)

    def leaf_end(self) -> int:
        """One past the highest archived leaf index (0: none), read once per archive version.

        A reader tailing the log asks the archive only for leaves past this: usually none, since
        the archive moves months long after their leaves were committed.
        """
        with self._lock:
            version, cached = self.version, self._leaf_end
        if cached is not None and cached[0] == version:
            return cached[1]
        paths = self._paths(self.files())
        end = int(self._table(sql.leaf_size(paths)).column("size")[0].as_py()) if paths else 0
        with self._lock:
            if self.version == version:
                self._leaf_end = (version, end)
        return end

    def leaf_rows(self, first: int, last: int) -> pa.Table:
        """The archived (leaf_index, leaf_hash) rows in [first, last), for the hot store's log.

        It reads them when it rebuilds its tree files (storage.log.store_log.ArchivedLeaves).
        """
        paths = self._paths(self.files())
        if not paths:
            return pa.table(
                {"leaf_index": pa.array([], pa.int64()), "leaf_hash": pa.array([], pa.binary(32))}
            )
        return self._table(sql.leaf_hashes(paths, first, last))

    def get_event(self, event_id: str) -> pa.Table:
        """The archived event with that id: zero or one row (bloom filters skip most row groups)."""
        paths = self._paths(self.files())
        if not paths:
            return EVENT_SCHEMA.empty_table()
        return self._table(sql.event_by_id(paths, event_id)).cast(EVENT_SCHEMA)

    def cell_history(self, workbook: str, sheet: str, cell: str, limit: int) -> pa.Table:
        """Events on one cell, newest first: months asked newest first in doubling groups."""
        months = sorted(self.months().items(), reverse=True)
        found: list[pa.Table] = []
        rows, first, size = 0, 0, 1
        while first < len(months) and rows < limit:
            group = [f for _, m in months[first : first + size] for f in m.files]
            part = self._table(sql.cell_history(self._paths(group), workbook, sheet, cell, limit, False))
            found.append(part)
            rows += part.num_rows
            first, size = first + size, size * 2
        if not found:
            return EVENT_SCHEMA.empty_table()
        return pa.concat_tables(found).slice(0, limit).cast(EVENT_SCHEMA)

    # -- verifiable history (storage.archive.history merges these with the hot store's) ----------

    def cell_state(self, workbook: str, sheet: str, cell: str, at: dt.datetime) -> pa.Table:
        """The archived event that set the cell last as of `at` (zero or one row)."""
        paths = self._paths(self.files(None, at + dt.timedelta(microseconds=1)))
        if not paths:
            return EVENT_SCHEMA.empty_table()
        return self._table(sql.cell_state(paths, workbook, sheet, cell, at, False)).cast(EVENT_SCHEMA)

    def workbook_state(
        self, workbook: str, at: dt.datetime, limit: int, after: tuple[str, str] | None
    ) -> pa.Table:
        """The archived cells' last setting events as of `at`, one page in (sheet, cell) order."""
        paths = self._paths(self.files(None, at + dt.timedelta(microseconds=1)))
        if not paths:
            return EVENT_SCHEMA.empty_table()
        return self._table(sql.workbook_state(paths, workbook, at, limit, after)).cast(EVENT_SCHEMA)

    def session_numbers(self, session_id: str) -> pa.Table:
        """Archived events and session ends per session_seq of one session."""
        paths = self._paths(self.files())
        if not paths:
            return NUMBERS_SCHEMA.empty_table()
        return self._table(sql.session_numbers(paths, session_id)).cast(NUMBERS_SCHEMA)

    def session_seq_events(self, session_id: str, seqs: list[int]) -> pa.Table:
        """The archived events of the session carrying one of `seqs`."""
        paths = self._paths(self.files())
        if not paths:
            return EVENT_SCHEMA.empty_table()
        return self._table(sql.session_seq_events(paths, session_id, seqs)).cast(EVENT_SCHEMA)

    def id_hits(self, month: int, ids: list[str]) -> set[str]:
        """Which of `ids` the archived month holds."""
        manifest = self.months().get(month)
        if manifest is None or not ids:
            return set()
        table = self._table(archive_sql.id_hits(self._paths(list(manifest.files)), ids))
        return set(table.column("event_id").to_pylist())

    def fingerprint(self, files: list[FileEntry]) -> tuple[int, int]:
        """Rows and fingerprint of the events in `files`, as read back from the location."""
        if not files:
            return 0, 0
        row = self._table(archive_sql.fingerprint(self._paths(files))).to_pylist()[0]
        return int(row["n"]), int(row["fp"]) & 0xFFFF_FFFF_FFFF_FFFF

    # -- statistics -----------------------------------------------------------------------------

    def rollup(self, entry: FileEntry) -> Parts:
        """A file's footer rollup, split by dimension (computed from its rows if it has none)."""
        with self._lock:
            cached = self._rollups.get(entry.path)
        if cached is not None:
            return cached
        full = self.location.full(entry.path)
        metadata = pq.read_metadata(full, filesystem=self.location.fs).metadata or {}
        rollup = decode(metadata[ROLLUP_KEY]) if ROLLUP_KEY in metadata else None
        if rollup is None or not rollup.schema.equals(ROLLUP_SCHEMA):
            columns = ["event_type", "user_name", "workbook_name", "session_id", "timestamp"]
            rollup = rollup_of(pq.read_table(full, filesystem=self.location.fs, columns=columns))
        parts = split(rollup)
        with self._lock:
            self._rollups[entry.path] = parts
        return parts

    def stats_parts(self, flt: EventFilter) -> tuple[list[Parts], list[tuple[int, int]]]:
        """Rollup-shaped figures of the matching archived events, and their time bounds (µs).

        Files wholly inside a time-only filter give their footer rollups; the rest one scan.
        """
        lo, hi = _us(flt.start), _us(flt.end)
        time_only = flt == EventFilter(start=flt.start, end=flt.end)
        files = self.files(flt.start, flt.end)
        inside = [f for f in files if time_only and _within(f, lo, hi)]
        scan = [f for f in files if f not in inside]
        parts = [self.rollup(f) for f in inside]
        bounds = [(f.min_us, f.max_us) for f in inside]
        if scan:
            grouped = self._table(sql.stats_groups(self._paths(scan), flt))
            edge = grouped.filter(pc.equal(grouped.column("dim"), -1)).to_pylist()
            if edge and edge[0]["lo"] is not None:
                bounds.append((edge[0]["lo"], edge[0]["hi"]))
            parts.append(split(grouped.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)))
        return parts, bounds

    def timeseries_counts(
        self, flt: EventFilter, bucket: Bucket, group_by: GroupBy | None, limit: int
    ) -> pa.Table:
        """Non-empty (b, g, c) cells of the matching archived events (at most `limit`)."""
        grouped = group_by is not None
        files = self.files(flt.start, flt.end)
        time_only = flt == EventFilter(start=flt.start, end=flt.end)
        if bucket in series.ROLLUP_BUCKETS and group_by in (None, "event_type") and time_only:
            lo, hi = _us(flt.start), _us(flt.end)
            inside = [f for f in files if _within(f, lo, hi)]
            parts = [series.rollup_counts(self.rollup(f), bucket, grouped) for f in inside]
            files = [f for f in files if f not in inside]
            group_by = "event_type" if grouped else None
        else:
            parts = []
        if files:
            q = sql.timeseries_counts(self._paths(files), flt, bucket, group_by, limit)
            parts.append(self._table(q).cast(series.COUNTS_SCHEMA))
        return series.combine(parts)

    def fill(self, counts: pa.Table, bucket: Bucket, grouped: bool, lo: int, hi: int) -> pa.Table:
        """The zero-filled series of some (b, g, c) cells over buckets lo..hi (the Parquet store's SQL)."""
        with self._cursor() as cur:
            cur.register("_counts", counts)
            q = sql.timeseries_fill("_counts", bucket, grouped, lo, hi)
            return cur.sql(q.sql, params=q.params).to_arrow_table().cast(sql.TIMESERIES_SCHEMA)

    # -- sessions -------------------------------------------------------------------------------

    def all_session_ids(self) -> set[str]:
        """Every archived session id, from the footers' rollups (cached until `refresh`)."""
        with self._lock:
            if self._sessions is not None:
                return self._sessions
        ids: set[str] = set()
        for f in self.files():
            ids.update(self.rollup(f)[3].column("key").to_pylist())
        with self._lock:
            self._sessions = ids
        return ids

    def session_ids(self, flt: EventFilter) -> set[str]:
        """Distinct session ids of the matching archived events."""
        paths = self._paths(self.files(flt.start, flt.end))
        if not paths:
            return set()
        return set(self._table(archive_sql.session_ids(paths, flt)).column("session_id").to_pylist())

    def session_partials(self, ids: list[str]) -> pa.Table:
        """Archived figures of each given session with its first event's key."""
        paths = self._paths(self.files())
        if not paths or not ids:
            return PARTIAL_SCHEMA.empty_table()
        return self._table(archive_sql.session_partials(paths, ids)).cast(PARTIAL_SCHEMA)

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None) -> pa.Table:
        """Sessions of the archive alone (figures over archived events only), newest first."""
        paths = self._paths(self.files())
        if not paths:
            return sql.SESSION_SCHEMA.empty_table()
        return self._table(sql.session_rows(paths, flt, limit, after)).cast(sql.SESSION_SCHEMA)

    def keys_after(self, flt: EventFilter, page: Page) -> list[Cursor]:
        """The keys of up to `page.limit` matching archived events after the cursor (no other column)."""
        rows = self.query(flt, page).select(["timestamp", "event_id"])
        ts = rows.column("timestamp").cast(pa.int64()).to_pylist()
        return [Cursor(int(t), str(i)) for t, i in zip(ts, rows.column("event_id").to_pylist(), strict=True)]


def _within(f: FileEntry, lo: int | None, hi: int | None) -> bool:
    """Whether every row of `f` lies in [lo, hi)."""
    return (lo is None or f.min_us >= lo) and (hi is None or f.max_us < hi)


def unreachable(exc: BaseException) -> TerminalStoreError:
    """The error a read raises when the archive cannot be read."""
    return TerminalStoreError(f"the archive cannot be read: {exc}")
