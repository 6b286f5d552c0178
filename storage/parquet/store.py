"""ParquetStore: the local-mode and archive engine, DuckDB over `year=/month=` Parquet files.

Writes: each append is deduplicated (inside the batch, then against everything stored, via the
hash index and an exact confirmation of hash hits), split by month, written one file per month
with its rollup sidecar, fsync'd, and published by one atomic manifest commit. Reads take a
snapshot of the live files and let DuckDB scan only those overlapping the filter's time range;
stats add up the rollups of files wholly inside the range and scan only the rest. A background
thread merges a partition's small files once there are too many (storage.parquet.compaction).

Concurrency: one DuckDB connection, a fresh cursor per call; appends and compaction commits are
serialised by one write lock; an exclusive lock file keeps a second process off the same root.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.archive import queries as archive_sql
from storage.base import (
    ENGINE_MEMORY_MB,
    MAX_SERIES_POINTS,
    AppendResult,
    Bucket,
    Cursor,
    EventFilter,
    ExportResult,
    GroupBy,
    HealthCheck,
    Page,
    SessionFilter,
    Stats,
)
from storage.errors import InvalidQueryError, StoreHeldError, TerminalStoreError
from storage.export import write_partitioned
from storage.keyset import EXPORT_BATCH_BYTES, keyset_tables
from storage.log.completeness import NUMBERS_SCHEMA
from storage.log.export_log import CHECKPOINT_PATH, export_log, local_output, whole_store, write_log
from storage.log.store_log import ArchivedLeaves, LogOptions, StoreLog, without_leaves
from storage.parquet import queries as sql
from storage.parquet import series as series
from storage.parquet.compaction import Compactor, month_key
from storage.parquet.errors import translate_errors
from storage.parquet.index import HashIndex, first_per_id
from storage.parquet.layout import CELL_KEY, FILE_SCHEMA, DataFile, FileSet, by_month, partition_of
from storage.parquet.rollup import ROLLUP_SCHEMA, split, summarize
from storage.schema import EVENT_SCHEMA, conform

__all__ = ["ParquetStore"]

log = logging.getLogger(__name__)

MAX_BUCKETS = series.MAX_BUCKETS
#: Where DuckDB spills past its memory limit (under the root: same disk, cleared at open).
SPILL_DIR = "_spill"
#: The transparency log's tree files, checkpoint and (generated) key, beside the data.
LOG_DIR = "log"
_EPOCH = sql.EPOCH


def _us(value: dt.datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // dt.timedelta(microseconds=1)


def _dt(us: int | None) -> dt.datetime | None:
    return None if us is None else _EPOCH + dt.timedelta(microseconds=us)


def _engine(memory_mb: int, spill: Path, *, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB instance whose memory is bounded whatever the data's size (issue 9).

    Past `memory_limit` DuckDB spills sorts and aggregations to `spill` instead of growing the
    process. Reads and appends get one instance, compaction another with one thread (a merge sort
    of wide rows needs ~100 MB per thread to spill at all; measured), so that together they stay
    within the store's budget and a merge never starves a read of memory.
    """
    spill.mkdir(parents=True, exist_ok=True)  # DuckDB creates only the last level
    config: dict[str, str | bool | int | float | list[str]] = {
        "memory_limit": f"{memory_mb}MB",
        "temp_directory": str(spill),
    }
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(":memory:", config=config)
    # Files are immutable under unique names, so caching their footers is always safe.
    con.execute("SET GLOBAL parquet_metadata_cache = true")
    return con


class ParquetStore:
    """`EventStore` over Parquet files under `root`; see the module docstring for the design."""

    name = "parquet"

    def __init__(
        self,
        root: Path,
        *,
        compact_threshold: int = 8,
        compact_max_rows: int = 4_000_000,
        memory_mb: int = ENGINE_MEMORY_MB,
        log: LogOptions | None = None,
    ) -> None:
        self.root = Path(root)
        self._log_options = LogOptions() if log is None else log
        #: The transparency log (storage.log), open while the store is; None when off.
        self.transparency_log: StoreLog | None = None
        self.keeps_log = self._log_options.enabled
        self._archived_leaves: ArchivedLeaves | None = None
        self._memory_mb = memory_mb
        self._files = FileSet(self.root)
        self._index = HashIndex()
        self._write_lock = threading.Lock()
        self._use_cell_key = True
        self._con: duckdb.DuckDBPyConnection | None = None
        self._compaction_con: duckdb.DuckDBPyConnection | None = None
        self._lockfile: IO[bytes] | None = None
        self._compactor = Compactor(
            self._files, self._compaction_cursor, self._write_lock, compact_threshold, compact_max_rows
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self) -> None:
        """Lock the root, load the manifest, drop orphans, rebuild the id index, start compaction."""
        if self._con is not None:
            return
        with translate_errors("open"):
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock_root()
            try:
                self._start()
            except BaseException:
                self.close()
                raise

    def _start(self) -> None:
        self._files.load()
        spill = self.root / SPILL_DIR
        shutil.rmtree(spill, ignore_errors=True)  # a crashed run's leftovers
        con = _engine(self._memory_mb // 2, spill / "reads")
        self._compaction_con = _engine(self._memory_mb // 2, spill / "compaction", threads=1)
        con.register("_empty_arrow", pa.Table.from_batches([], FILE_SCHEMA))
        con.execute(f"CREATE TABLE {sql.EMPTY_TABLE} AS SELECT * FROM _empty_arrow")
        con.unregister("_empty_arrow")
        self._con = con
        probe = self._table(sql.cell_key_probe()).column("probe")[0].as_py()
        self._use_cell_key = self._files.adopt_cell_key(probe)
        if not self._use_cell_key:
            log.warning(
                "parquet store %s: cell keys from another DuckDB version; cell history scans", self.root
            )
        self._rebuild_index()
        self._open_log()
        self._compactor.start()

    def _open_log(self) -> None:
        """The log beside the data (`<root>/log` unless configured), synced to the manifest's leaves."""
        options = self._log_options
        if not options.enabled:
            return
        store_log = StoreLog(options.directory or self.root / LOG_DIR, options)
        try:
            store_log.open(lambda: self._files.manifest.leaves, self._leaf_rows, self._archived_leaves)
        except BaseException:
            store_log.close()
            raise
        self.transparency_log = store_log

    def _leaf_rows(self, first: int, last: int) -> pa.Table:
        """The (leaf_index, leaf_hash) rows of leaves [first, last) the files hold, in leaf order."""
        with self._files.snapshot() as files:
            return self._table(sql.leaf_hashes(self._paths(files), first, last))

    def use_archived_leaves(self, archived: ArchivedLeaves) -> None:
        """The archive of this store's moved months: its leaves count when the log opens (before `open`)."""
        self._archived_leaves = archived

    def _lock_root(self) -> None:
        fh = (self.root / "_lock").open("ab")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            fh.close()
            raise StoreHeldError(f"parquet store {self.root} is open in another process") from exc
        self._lockfile = fh

    def _rebuild_index(self) -> None:
        self._index.clear()
        with self._files.snapshot() as files, self._cursor() as cur:
            if files:
                q = sql.Query(sql.hash_ids(sql.SOURCE), {"files": self._paths(files)})
                self._index.add(cur.sql(q.sql, params=q.params).fetchnumpy()["h"].astype(np.uint64))

    def close(self) -> None:
        """Stop compaction and the log's signer, release DuckDB and the root lock; idempotent."""
        self._compactor.stop()
        if self.transparency_log is not None:
            self.transparency_log.close()
            self.transparency_log = None
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._compaction_con is not None:
            self._compaction_con.close()
            self._compaction_con = None
        if self._lockfile is not None:
            self._lockfile.close()
            self._lockfile = None

    @contextmanager
    def _compaction_cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._compaction_con is None:
            raise TerminalStoreError("parquet store is not open")
        cur = self._compaction_con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    @contextmanager
    def _cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        if self._con is None:
            raise TerminalStoreError("parquet store is not open")
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def _paths(self, files: tuple[DataFile, ...] | list[DataFile]) -> list[str]:
        return [str(self.root / f.path) for f in files]

    def _select(
        self, files: tuple[DataFile, ...], start: dt.datetime | None, end: dt.datetime | None
    ) -> list[str]:
        """Absolute paths of the files whose time range overlaps [start, end)."""
        lo, hi = _us(start), _us(end)
        return self._paths([f for f in files if f.overlaps(lo, hi)])

    def _table(self, q: sql.Query) -> pa.Table:
        with self._cursor() as cur:
            return cur.sql(q.sql, params=q.params).to_arrow_table()

    # -- writes ------------------------------------------------------------------------------

    def append(self, batch: pa.Table, /) -> AppendResult:
        """Dedup, write one file per month touched, commit them atomically; durable on return."""
        with translate_errors("append"):
            table = without_leaves(conform(batch))
            hashes, cell_keys = self._batch_keys(table)
            table = table.append_column(FILE_SCHEMA.field(CELL_KEY), cell_keys)
            unique, hashes = first_per_id(table, hashes)
            with self._write_lock:
                fresh, hashes = self._drop_stored(unique, hashes)
                self._commit_logged(fresh)
                self._index.add(hashes)
            self._compactor.poke()
            return AppendResult(stored=fresh.num_rows, duplicates=batch.num_rows - fresh.num_rows)

    def _batch_keys(self, table: pa.Table) -> tuple[np.ndarray, pa.Array]:
        """Every row's event_id hash and hidden cell key, in one DuckDB pass.

        The id hash is DuckDB's 64-bit hash, the same function that rebuilds the index at open.
        """
        with self._cursor() as cur:
            cur.register("_batch", table.select(["event_id", "workbook_name", "sheet_name", "cell_address"]))
            keys = cur.sql(sql.batch_keys("_batch")).to_arrow_table()
            cur.unregister("_batch")
        hashes: np.ndarray = keys.column("h").to_numpy().astype(np.uint64)
        return hashes, keys.column("ck").combine_chunks().cast(pa.uint64())

    def _drop_stored(self, table: pa.Table, hashes: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """Rows of `table` whose id is not stored yet, and their id hashes."""
        hit = self._index.contains(hashes)
        if not hit.any():
            return table, hashes
        stored = self._confirm_stored(table.filter(pa.array(hit)))
        keep = ~(hit & np.asarray(pc.is_in(table.column("event_id"), value_set=stored)))
        return table.filter(pa.array(keep)), hashes[keep]

    def _confirm_stored(self, candidates: pa.Table) -> pa.Array:
        """The candidate ids really stored.

        Retries carry the same timestamp, so the files of that time range are asked first; ids not
        found there are looked up in every file, so a re-sent id with another timestamp is still caught.
        """
        ids = candidates.column("event_id").to_pylist()
        bounds = pc.min_max(candidates.column("timestamp").cast(pa.int64()))
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py() + 1
        with self._files.snapshot() as files:
            near = [f for f in files if f.overlaps(lo, hi)]
            found = self._table(sql.confirm_ids(self._paths(near), ids, lo, hi)).column("event_id")
            rest = sorted(set(ids) - set(found.to_pylist()))
            if rest:
                far = self._table(sql.confirm_ids(self._paths(files), rest, None, None)).column("event_id")
                found = pa.concat_arrays([*found.chunks, *far.chunks]) if far else found
        return pa.array(found.to_pylist(), pa.string())

    def _commit_logged(self, table: pa.Table) -> None:
        """Commit new rows as the log's next leaves (leaf columns and counter in the same manifest)."""
        store_log = self.transparency_log
        if store_log is None or table.num_rows == 0:
            self._commit(table)
            return
        leaves = store_log.assign(table)
        try:
            self._commit(leaves, leaves=store_log.next_index + leaves.num_rows)
        except BaseException:
            store_log.failed()
            raise
        store_log.committed(leaves)

    def _commit(self, table: pa.Table, *, leaves: int = 0) -> None:
        if table.num_rows == 0:
            return
        written: list[DataFile] = []
        try:
            for key, part in by_month(table):
                written.append(self._files.write(part, key))
            self._files.make_durable(written)
            self._files.commit(written, leaves=leaves)
        except BaseException:
            self._files.discard(written)
            raise

    def compact(self) -> int:
        """Merge every partition that has too many small files now; returns merges done."""
        with translate_errors("compact"):
            return self._compactor.run_until_done()

    # -- reads -------------------------------------------------------------------------------

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """A keyset page of matching events in (timestamp, event_id) order.

        Months hold disjoint time ranges, so they are asked in the page's order in growing groups
        (1, 2, 4, ... months), each for the rows still missing: the latest page of a filter with no
        time range reads the newest month or two, not every file (as cell_history does). Months
        wholly on the far side of the cursor are skipped.
        """
        if page.limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        with translate_errors("query"), self._files.snapshot() as files:
            lo, hi = _us(flt.start), _us(flt.end)
            selected = tuple(f for f in files if f.overlaps(lo, hi) and _past_cursor(f, page))
            found: list[pa.Table] = []
            rows = 0
            for group in _newest_months_first(selected, newest_first=page.order == "desc"):
                q = sql.events_page(self._paths(group), flt, page.limit - rows, page.order, page.after)
                part = self._table(q)
                found.append(part)
                rows += part.num_rows
                if rows >= page.limit:
                    break
            if not found:
                return self._table(sql.events_page([], flt, page.limit, page.order, page.after)).cast(
                    EVENT_SCHEMA
                )
            return pa.concat_tables(found).cast(EVENT_SCHEMA)

    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """The key of the page's last row when more rows follow it (two key columns, no rows)."""
        if page.limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        with translate_errors("page_end"), self._files.snapshot() as files:
            paths = self._select(files, flt.start, flt.end)
            keys = self._table(sql.page_end(paths, flt, page.limit, page.order, page.after)).to_pylist()
        if len(keys) < 2:
            return None
        return Cursor(timestamp_us=int(keys[0]["ts_us"]), event_id=str(keys[0]["event_id"]))

    def get_event(self, event_id: str, /) -> pa.Table:
        """The event with that id, zero or one row."""
        with translate_errors("get_event"), self._files.snapshot() as files:
            return self._table(sql.event_by_id(self._paths(files), event_id)).cast(EVENT_SCHEMA)

    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """Matching events after leaf `after` in leaf order (files chosen by the filter's time range)."""
        if limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        with translate_errors("after_leaf"), self._files.snapshot() as files:
            paths = self._select(files, flt.start, flt.end)
            return self._table(sql.after_leaf(paths, flt, after, limit)).cast(EVENT_SCHEMA)

    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """Every event on that exact cell, newest first.

        Months hold disjoint time ranges, so they are asked newest first in growing groups
        (1, 2, 4, ... months): once `limit` rows are found, no older month can hold a newer one.
        A hot cell is answered by its last few months, a rare one by a few queries.
        """
        with translate_errors("cell_history"), self._files.snapshot() as files:
            args = (workbook_name, sheet_name, cell_address, limit, self._use_cell_key)
            found: list[pa.Table] = []
            rows = 0
            for group in _newest_months_first(files):
                part = self._table(sql.cell_history(self._paths(group), *args))
                found.append(part)
                rows += part.num_rows
                if rows >= limit:
                    break
            if not found:
                return EVENT_SCHEMA.empty_table()
            return pa.concat_tables(found).slice(0, limit).cast(EVENT_SCHEMA)

    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """Exact totals and top lists, from rollups where they answer exactly.

        Files wholly inside a time-only filter contribute their rollups; every other matching
        file is read by one grouped scan (storage.parquet.queries.stats_groups).
        """
        with translate_errors("stats"), self._files.snapshot() as files:
            lo, hi = _us(flt.start), _us(flt.end)
            inside = [f for f in files if _time_only(flt) and _within(f, lo, hi)]
            scan = [f for f in files if f.overlaps(lo, hi) and f not in inside]
            rollups = [self._files.rollups.parts(f.path) for f in inside]
            bounds = [(f.min_us, f.max_us) for f in inside]
            if scan:
                grouped = self._table(sql.stats_groups(self._paths(scan), flt))
                edge = grouped.filter(pc.equal(grouped.column("dim"), -1)).to_pylist()
                if edge and edge[0]["lo"] is not None:
                    bounds.append((edge[0]["lo"], edge[0]["hi"]))
                rollups.append(split(grouped.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)))
            s = summarize(rollups, top)
        return Stats(
            total_events=s.total_events,
            unique_users=s.unique_users,
            unique_workbooks=s.unique_workbooks,
            unique_sessions=s.unique_sessions,
            first_event_at=_dt(min((b[0] for b in bounds), default=None)),
            last_event_at=_dt(max((b[1] for b in bounds), default=None)),
            by_event_type=s.by_event_type,
            top_users=s.top_users,
            top_workbooks=s.top_workbooks,
        )

    def timeseries(
        self,
        flt: EventFilter,
        bucket: Bucket,
        group_by: GroupBy | None,
        max_points: int = MAX_SERIES_POINTS,
        /,
    ) -> pa.Table:
        """Counts per bucket (and group), zero-filled in SQL once the grid is known to fit `max_points`.

        The non-empty cells come from the rollups (time-only filters, hour/day/week, by event type
        or none) or from one grouped scan, at most `max_points + 1` of them (storage.parquet.series).
        """
        if bucket not in sql.BUCKET_US:
            raise InvalidQueryError(f"unknown bucket {bucket!r}")
        grouped = group_by is not None
        if flt.start is not None and flt.end is not None:  # the window alone may be too wide: no scan
            window = series.span(series.COUNTS_SCHEMA.empty_table(), _us(flt.start), _us(flt.end), bucket)
            if window is not None:
                series.check_grid(series.COUNTS_SCHEMA.empty_table(), *window, bucket, False, max_points)
        with translate_errors("timeseries"), self._files.snapshot() as files:
            if bucket in series.ROLLUP_BUCKETS and group_by in (None, "event_type") and _time_only(flt):
                counts = self._rollup_counts(files, flt, bucket, grouped, max_points)
            else:
                paths = self._select(files, flt.start, flt.end)
                q = sql.timeseries_counts(paths, flt, bucket, group_by, max_points + 1)
                counts = self._table(q).cast(series.COUNTS_SCHEMA)
            if counts.num_rows > max_points:
                raise series.too_many_points(max_points)
            bounds = series.span(counts, _us(flt.start), _us(flt.end), bucket)
            if bounds is None:
                return sql.TIMESERIES_SCHEMA.empty_table()
            series.check_grid(counts, *bounds, bucket, grouped, max_points)
            with self._cursor() as cur:
                cur.register("_counts", counts)
                q = sql.timeseries_fill("_counts", bucket, grouped, *bounds)
                return cur.sql(q.sql, params=q.params).to_arrow_table().cast(sql.TIMESERIES_SCHEMA)

    def _rollup_counts(
        self, files: tuple[DataFile, ...], flt: EventFilter, bucket: Bucket, grouped: bool, max_points: int
    ) -> pa.Table:
        """Hourly rollups of the files wholly inside the range, a scan of the boundary files."""
        lo, hi = _us(flt.start), _us(flt.end)
        inside = [f for f in files if _within(f, lo, hi)]
        parts = [series.rollup_counts(self._files.rollups.parts(f.path), bucket, grouped) for f in inside]
        scan = self._paths([f for f in files if f.overlaps(lo, hi) and not _within(f, lo, hi)])
        if scan:
            q = sql.timeseries_counts(scan, flt, bucket, "event_type" if grouped else None, max_points + 1)
            parts.append(self._table(q).cast(series.COUNTS_SCHEMA))
        return series.combine(parts)

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """Sessions with an event in the window, newest first, figures over the whole session."""
        with translate_errors("sessions"), self._files.snapshot() as files:
            q = sql.session_rows(self._paths(files), flt, limit, after)
            return self._table(q).cast(sql.SESSION_SCHEMA)

    def session(self, session_id: str, /) -> pa.Table:
        """One session's figures: zero or one row."""
        with translate_errors("session"), self._files.snapshot() as files:
            return self._table(sql.one_session(self._paths(files), session_id)).cast(sql.SESSION_SCHEMA)

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        """Stream matching events into `destination` as `year=/month=` Parquet plus manifest.json.

        Rows come as keyset pages of about EXPORT_BATCH_BYTES (storage.keyset): one sorted query
        over everything would sort the whole export inside DuckDB first.
        """
        if "://" in destination and not destination.startswith("file://"):
            raise InvalidQueryError("the parquet store exports to local paths only")
        target = Path(destination.removeprefix("file://"))
        with translate_errors("export"):
            snap, cut = export_log(self.transparency_log, flt)
            pages = keyset_tables(self.query, cut, "asc", None, batch_bytes=EXPORT_BATCH_BYTES)
            manifest = write_partitioned((b for page in pages for b in page.to_batches()), target)
            if snap is not None and self.transparency_log is not None:
                write_log(self.transparency_log, snap, local_output(target), tree=whole_store(flt))
                manifest["log"] = {"checkpoint": CHECKPOINT_PATH, "size": snap.size}
        return ExportResult(destination=str(target), manifest=manifest)

    # -- verifiable history (issue 11): any cell at any time, completeness per session -----------

    def cell_state(
        self, workbook_name: str, sheet_name: str, cell_address: str, at: dt.datetime, /
    ) -> pa.Table:
        """The last event that set the cell as of `at`: files starting after `at` are not read."""
        with translate_errors("cell_state"), self._files.snapshot() as files:
            paths = self._select(files, None, at + dt.timedelta(microseconds=1))
            q = sql.cell_state(paths, workbook_name, sheet_name, cell_address, at, self._use_cell_key)
            return self._table(q).cast(EVENT_SCHEMA)

    def workbook_state(
        self, workbook_name: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, /
    ) -> pa.Table:
        """Every cell's last setting event as of `at`, one keyset page in (sheet, cell) order."""
        if limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        with translate_errors("workbook_state"), self._files.snapshot() as files:
            paths = self._select(files, None, at + dt.timedelta(microseconds=1))
            return self._table(sql.workbook_state(paths, workbook_name, at, limit, after)).cast(EVENT_SCHEMA)

    def session_numbers(self, session_id: str, /) -> pa.Table:
        """Events and session ends per session_seq of one session (one grouped scan)."""
        with translate_errors("session_numbers"), self._files.snapshot() as files:
            return self._table(sql.session_numbers(self._paths(files), session_id)).cast(NUMBERS_SCHEMA)

    def session_seq_events(self, session_id: str, seqs: list[int], /) -> pa.Table:
        """The session's events carrying one of `seqs`."""
        with translate_errors("session_seq_events"), self._files.snapshot() as files:
            q = sql.session_seq_events(self._paths(files), session_id, seqs)
            return self._table(q).cast(EVENT_SCHEMA)

    # -- the archive tier (storage.archive.tiers) ------------------------------------------------

    def _month_files(self, files: tuple[DataFile, ...], month: int) -> list[str]:
        return self._paths([f for f in files if f.partition == partition_of(month)])

    def months(self) -> dict[int, int]:
        """Rows held per UTC month (YYYYMM), from the manifest (no scan)."""
        held: dict[int, int] = {}
        for f in self._files.manifest.files:
            key = month_key(f.partition)
            held[key] = held.get(key, 0) + f.rows
        return dict(sorted(held.items()))

    def month_fingerprint(self, month: int, /) -> tuple[int, int]:
        """Rows and content fingerprint (storage.archive.fingerprint) of one month's files."""
        with translate_errors("month_fingerprint"), self._files.snapshot() as files:
            paths = self._month_files(files, month)
            if not paths:
                return 0, 0
            row = self._table(archive_sql.fingerprint(paths)).to_pylist()[0]
        return int(row["n"]), int(row["fp"]) & 0xFFFF_FFFF_FFFF_FFFF

    def read_month(self, month: int, /) -> Iterator[pa.RecordBatch]:
        """A month's events in (timestamp, event_id) order, streamed (for the archive mover).

        The snapshot stays open while the caller reads, so compaction cannot delete the files.
        """
        with translate_errors("read_month"), self._files.snapshot() as files:
            paths = self._month_files(files, month)
            if not paths:
                return
            q = archive_sql.month_rows(paths)
            with self._cursor() as cur:
                reader = cur.sql(q.sql, params=q.params).to_arrow_reader(65_536)
                for batch in reader:
                    yield batch.cast(EVENT_SCHEMA)

    def drop_month(self, month: int, /) -> None:
        """Drop a month's files by one manifest commit: after the archive committed them.

        Compaction is paused first, so no merge of the month's files can commit them back. The id
        index keeps their hashes: they only make a later id "maybe stored", which the exact
        confirmation against the files settles.
        """
        with translate_errors("drop_month"), self._compactor.paused(), self._write_lock:
            gone = [f for f in self._files.manifest.files if f.partition == partition_of(month)]
            if gone:
                self._files.commit([], remove=gone)

    def session_ids(self, flt: EventFilter, /) -> pa.Array:
        """Distinct non-null session ids of the matching events."""
        with translate_errors("session_ids"), self._files.snapshot() as files:
            paths = self._select(files, flt.start, flt.end)
            return self._table(archive_sql.session_ids(paths, flt)).column("session_id").combine_chunks()

    def session_partials(self, session_ids: list[str], /) -> pa.Table:
        """Figures of each given session over this store, with its first event's key (storage.archive.sessions)."""
        from storage.archive.sessions import PARTIAL_SCHEMA

        with translate_errors("session_partials"), self._files.snapshot() as files:
            if not files or not session_ids:
                return PARTIAL_SCHEMA.empty_table()
            return self._table(archive_sql.session_partials(self._paths(files), session_ids)).cast(
                PARTIAL_SCHEMA
            )

    def health(self) -> HealthCheck:
        """Run a real query over the live files; never raises."""
        try:
            with self._files.snapshot() as files:
                rows = sum(f.rows for f in files)
                probe = self._table(sql.stats_totals(self._paths(files[:1]), EventFilter()))
            return HealthCheck(
                ok=probe.num_rows == 1,
                detail=f"parquet store at {self.root}",
                data={"files": len(files), "rows": rows, "generation": self._files.manifest.generation},
            )
        except Exception as exc:  # health reports, never raises
            return HealthCheck(ok=False, detail=f"parquet store unavailable: {exc}")

    def internals(self) -> dict[str, float]:
        """Files per month, compaction backlog and last merge, spill bytes (storage.internals).

        From the manifest and the compactor's bookkeeping: no file is opened, only the spill
        directory (a few DuckDB temp files) is listed and DuckDB asked for its buffer sizes.
        """
        if self._con is None:
            raise TerminalStoreError("parquet store is not open")
        files = self._files.manifest.files
        per_month: dict[str, int] = {}
        for f in files:
            per_month[f.partition] = per_month.get(f.partition, 0) + 1
        compactor = self._compactor
        out: dict[str, float] = {
            "parquet_files": len(files),
            "parquet_months": len(per_month),
            "parquet_max_files_per_month": max(per_month.values(), default=0),
            "parquet_rows": sum(f.rows for f in files),
            "parquet_compaction_backlog_files": compactor.backlog(files),
            "parquet_compaction_running": compactor.merging_files,
            "parquet_compactions": compactor.merges_done,
            "parquet_spill_bytes": _tree_bytes(self.root / SPILL_DIR),
            "parquet_duckdb_memory_bytes": self._duckdb_memory(),
        }
        if (last := compactor.last_merge) is not None:
            out["parquet_last_compaction_seconds"] = last.seconds
            out["parquet_last_compaction_rows"] = last.rows
        return out

    def _duckdb_memory(self) -> int:
        """Bytes both DuckDB instances (reads/appends, compaction) hold in memory now."""
        q = sql.engine_memory()
        total = 0
        for cursor in (self._cursor, self._compaction_cursor):
            with cursor() as cur:
                rows = cur.sql(q.sql, params=q.params).fetchall()
                total += int(rows[0][0]) if rows else 0
        return total


def _past_cursor(f: DataFile, page: Page) -> bool:
    """Whether `f` may hold rows after the page's cursor (its time range reaches past it)."""
    if page.after is None:
        return True
    if page.order == "desc":
        return f.min_us <= page.after.timestamp_us
    return f.max_us >= page.after.timestamp_us


def _newest_months_first(
    files: tuple[DataFile, ...], *, newest_first: bool = True
) -> Iterator[list[DataFile]]:
    """The files in groups of whole months, newest (or oldest) months first, groups doubling in size."""
    months: dict[str, list[DataFile]] = {}
    for f in sorted(files, key=lambda f: f.partition, reverse=newest_first):
        months.setdefault(f.partition, []).append(f)
    ordered = list(months.values())
    size, first = 1, 0
    while first < len(ordered):
        yield [f for month in ordered[first : first + size] for f in month]
        first, size = first + size, size * 2


def _time_only(flt: EventFilter) -> bool:
    """Whether the filter constrains nothing but the time range (what rollups can answer)."""
    return flt == EventFilter(start=flt.start, end=flt.end)


def _within(f: DataFile, start_us: int | None, end_us: int | None) -> bool:
    """Whether every row of `f` lies in [start_us, end_us)."""
    return (start_us is None or f.min_us >= start_us) and (end_us is None or f.max_us < end_us)


def _tree_bytes(directory: Path) -> int:
    """Bytes of the files under `directory` (0 when it is gone); files vanishing meanwhile are skipped."""
    total = 0
    pending = [directory]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(Path(entry.path))
                else:
                    total += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
    return total
