"""ClickHouseStore: the EventStore contract on ClickHouse MergeTree, embedded (chdb) or a server.

It speaks only through clickhouse-connect. `chdb:///abs/dir` runs the engine in-process (one data
path per process; databases isolate stores inside it), `http(s)://user:pass@host:8123/db` talks
to a server or a cluster's Distributed tables.

Threading: one client per store, shared by the API's worker threads. The chdb backend serialises
calls on its connection handle with its own lock (a second call on a handle with an open stream
would silently return nothing, so it must); the HTTP client is created with
`autogenerate_session_id=False`, which makes it safe to share (urllib3's pool, no session lock).

Exactly once through a crash, by construction (issue 7). The argument:
1. Everything the store derives from the events lives in the events' own parts: the id lookup
   (projection p_ids), the hourly counts (p_hour_*) and the session figures (p_sessions), DDL 006.
   A part is written in a temporary directory, projections included, and published by one
   atomic rename; merges and mutations rebuild projections from the same rows. So at every
   instant, crash or not, the derived figures are functions of exactly the committed rows: there
   is no second table a kill -9 could leave behind or ahead (the materialized views before 006
   could, which stored resent batches twice and miscounted; tests/storage/clickhouse/test_torn_derived.py).
2. An append is answered only after its insert returned, so an acknowledged event is in a
   committed part. An unanswered append may be committed wholly, partly (one part per month) or
   not at all.
3. Every insert attempt, first or retried, is preceded by the exact lookup of its ids against the
   committed parts (under the writer lock), so a resent batch, grouped with any other requests,
   stores only the ids no committed part holds. The single writer's in-process hash filter only
   skips the lookup for ids it has never seen; it is rebuilt from audit_events at open and a
   hash is added before its insert, so it can say "maybe stored" wrongly but never "new" wrongly.
4. Engine-side block deduplication is off for non-replicated tables (DDL 006): it records a
   block's hash before the part commits, so a crash in between would silently drop the retry of
   that block. The lookup in 3 makes it redundant. Replicated tables (the cluster DDL) commit the
   block id and the part together in Keeper, so there the insert keeps a content-derived
   `insert_deduplication_token`, which also settles an insert whose status the server could not
   report.
With several writers (an HTTP server shared by API replicas), two appends racing past each
other's lookup can both store an event: ReplacingMergeTree collapses such copies (same id and
timestamp) and reads use FINAL, and the session figures are idempotent under a copy.

Writers: `single_writer` is True for the embedded engine (chdb opens a data path in one process
only, and this store serialises its appends per database with a process-wide lock), False for
http(s) servers, which several API replicas may write to at once. A single writer keeps an
in-process filter of stored-id hashes (storage.clickhouse.ids) so that only re-sent ids reach the
engine lookup, and, since its table never holds a duplicate, reads without FINAL. Passing
`single_writer=False` for chdb gives the multi-writer behaviour (tests use it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

import clickhouse_connect
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

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
from storage.clickhouse import queries as q
from storage.clickhouse.errors import retrying, translate
from storage.clickhouse.ids import IdFilter, WriterState, hash_ids, writer_state
from storage.clickhouse.migrations import DDL_DIR, apply_migrations
from storage.clickhouse.timeseries import bucket_bounds, bucket_width, too_many_points, zero_fill
from storage.errors import InvalidQueryError, StoreHeldError, TerminalStoreError
from storage.export import write_partitioned
from storage.keyset import EXPORT_BATCH_BYTES, keyset_tables
from storage.log.completeness import NUMBERS_SCHEMA
from storage.log.export_log import CHECKPOINT_PATH, export_log, local_output, whole_store, write_log
from storage.log.store_log import ArchivedLeaves, LogOptions, StoreLog, without_leaves
from storage.schema import EVENT_SCHEMA, UTC_MICROS, conform

__all__ = ["SESSION_SCHEMA", "ClickHouseStore", "database_from_dsn"]

DEFAULT_DATABASE: Final = "govtrack"
_IDENT: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
#: Ids per existence lookup: keeps an HTTP request's bound parameters well under URL limits.
_LOOKUP_CHUNK: Final = 5000

SESSION_SCHEMA: Final = pa.schema(
    [
        pa.field("session_id", pa.string(), nullable=False),
        pa.field("user_name", pa.string()),
        pa.field("machine_name", pa.string()),
        pa.field("start_time", UTC_MICROS),
        pa.field("end_time", UTC_MICROS),
        pa.field("duration_s", pa.float64()),
        pa.field("event_count", pa.int64()),
        pa.field("workbooks", pa.list_(pa.string())),
    ]
)
_COUNT_SCHEMAS: Final = {
    col: pa.schema([pa.field(col, pa.string()), pa.field("count", pa.int64())])
    for col in ("event_type", "user_name", "workbook_name")
}


def database_from_dsn(dsn: str) -> str | None:
    """The database named by an http(s) DSN's path (`http://host:8123/db`), if any."""
    parts = urlsplit(dsn)
    if parts.scheme.lower() == "chdb":
        return None
    name = unquote(parts.path.strip("/"))
    return name or None


def _cluster_flag(dsn: str) -> tuple[str, bool]:
    """Strip govtrack's own `ddl=cluster` query parameter from a DSN; True when it was there.

    With it, the store applies ddl/clickhouse/cluster/ (Replicated + Distributed tables, ON
    CLUSTER '{cluster}') instead of the single-node files.
    """
    parts = urlsplit(dsn)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in pairs if (k, v) != ("ddl", "cluster")]
    return urlunsplit(parts._replace(query=urlencode(kept))), len(kept) != len(pairs)


class ClickHouseStore:
    """EventStore over ClickHouse via clickhouse-connect (see the module docstring).

    The database comes from `database`, else the DSN's path, else "govtrack"; it must be a plain
    identifier. DDL files are unqualified and run in that database (the client's current one).
    """

    name = "clickhouse"

    def __init__(
        self,
        dsn: str,
        *,
        database: str | None = None,
        ddl_dir: Path = DDL_DIR,
        single_writer: bool | None = None,
        memory_mb: int = ENGINE_MEMORY_MB,
        log: LogOptions | None = None,
    ) -> None:
        db = database or database_from_dsn(dsn) or DEFAULT_DATABASE
        if not _IDENT.match(db):
            raise TerminalStoreError(f"invalid ClickHouse database name {db!r}")
        self.database = db
        self._memory_mb = memory_mb
        self._dsn, self.cluster = _cluster_flag(dsn)
        self._ddl_dir = ddl_dir / "cluster" if self.cluster else ddl_dir
        self._client: Any = None
        #: The DDL files the last `open()` applied (empty when the database was up to date).
        self.migrations_applied: tuple[str, ...] = ()
        parts = urlsplit(self._dsn)
        embedded = parts.scheme.lower() == "chdb"
        if single_writer and not embedded:
            raise TerminalStoreError(
                "single_writer needs the embedded engine (chdb://): a server may have several"
            )
        #: True: this process is the only writer (see the module docstring): no FINAL at read.
        self.single_writer = embedded if single_writer is None else single_writer
        data_path = Path(unquote(parts.netloc + parts.path)).resolve()
        self._writer: WriterState = writer_state(str(data_path), db) if self.single_writer else WriterState()
        self._log_options = LogOptions() if log is None else log
        self._log_dir = self._log_options.directory or (
            data_path / "log" / db if embedded else Path.cwd() / "log" / db
        )
        #: The transparency log (storage.log): only a single writer has one global commit order.
        self.transparency_log: StoreLog | None = None
        self.keeps_log = self.single_writer and self._log_options.enabled
        self._archived_leaves: ArchivedLeaves | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    @retrying
    def open(self) -> None:
        """Connect, create the database and apply the DDL files not yet recorded; idempotent."""
        if self._client is not None:
            return
        embedded = urlsplit(self._dsn).scheme.lower() == "chdb"
        extra: dict[str, Any] = (
            {"chdb_options": engine_options(self._memory_mb)}
            if embedded
            else {"autogenerate_session_id": False}
        )
        try:
            client = clickhouse_connect.get_client(dsn=self._dsn, database="default", **extra)
        except Exception as exc:
            # clickhouse-connect's words when chdb cannot take the path: its lock is held by another
            # process (the engine prints "Cannot lock file" on stderr, not into the exception)
            if embedded and "Unable to open the chdb engine" in str(exc):
                raise StoreHeldError(
                    f"the embedded ClickHouse engine could not open its data path (another process, "
                    f"such as a server, may be using it): {exc}"
                ) from exc
            raise
        try:
            client.command(q.create_database(self.database, on_cluster=self.cluster))
            client.database = self.database
            self.migrations_applied = tuple(apply_migrations(client, self._ddl_dir))
        except Exception:
            client.close()
            raise
        self._client = client
        if self.single_writer:  # now, not on the first append: ~1 s per million stored ids
            self._id_filter()
            self._open_log()

    def _open_log(self) -> None:
        """The log's tree files and checkpoints under `<data path>/log/<database>` (or as configured)."""
        if not self._log_options.enabled:
            return
        store_log = StoreLog(self._log_dir, self._log_options)
        try:
            with self._writer.lock:
                store_log.open(self._leaf_size, self._leaf_rows, self._archived_leaves)
        except BaseException:
            store_log.close()
            raise
        self.transparency_log = store_log

    @retrying
    def _leaf_size(self) -> int:
        return int(self._conn().command(q.leaf_size()))

    @retrying
    def _leaf_rows(self, first: int, last: int) -> pa.Table:
        return self._arrow(q.leaf_hashes(first, last))

    def use_archived_leaves(self, archived: ArchivedLeaves) -> None:
        """The archive of this store's moved months: its leaves count when the log opens (before `open`)."""
        self._archived_leaves = archived

    def close(self) -> None:
        """Stop the log's signer, release the client (and with the last chdb client, the engine); idempotent."""
        if self.transparency_log is not None:
            with self._writer.lock:
                self.transparency_log.close()
            self.transparency_log = None
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception as exc:
                raise translate(exc) from exc

    def health(self) -> HealthCheck:
        """A real `SELECT 1`; never raises."""
        try:
            value = self._conn().command(q.ping())
        except Exception as exc:
            return HealthCheck(
                ok=False, detail=f"clickhouse: {translate(exc)}", data={"database": self.database}
            )
        return HealthCheck(ok=str(value) == "1", detail="clickhouse ok", data={"database": self.database})

    @property
    def _final(self) -> bool:
        """Deduplicate at read: only when other writers may have raced this one."""
        return not self.single_writer

    def _conn(self) -> Any:
        if self._client is None:
            raise TerminalStoreError("ClickHouseStore is not open")
        return self._client

    def _arrow(self, query: q.Query) -> pa.Table:
        sql, params = query
        return self._conn().query_arrow(sql, parameters=params)

    # -- writes --------------------------------------------------------------------------------

    def append(self, batch: pa.Table, /) -> AppendResult:
        """Store the rows whose event_id is new; in-batch duplicates keep the first row.

        Appends of one store (and, for a single writer, of one database) are serialised, so the
        lookup and the insert of one append never interleave with another's.
        """
        if batch.num_rows == 0:
            return AppendResult(stored=0, duplicates=0)
        rows, hashes = _first_per_id(without_leaves(conform(batch)))
        with self._writer.lock:
            fresh, hashes = self._drop_stored(rows, hashes)
            if fresh.num_rows and self.transparency_log is not None:
                self._insert_logged(fresh, hashes, self.transparency_log)
            elif fresh.num_rows:
                self._insert_new(fresh, hashes)
        return AppendResult(stored=fresh.num_rows, duplicates=batch.num_rows - fresh.num_rows)

    def _insert_logged(self, rows: pa.Table, hashes: np.ndarray, store_log: StoreLog) -> None:
        """Insert new rows as the log's next leaves, one month (one atomic part) per insert.

        Rows are ordered by month first, so the leaves of each insert are one contiguous range
        and the months' inserts commit in leaf order: whatever a failure or a kill -9 leaves
        committed is a prefix of the assigned leaves, never a set with holes.
        """
        months = _month_numbers(rows.column("timestamp"))
        if len(months) > 1 and (np.diff(months) < 0).any():
            order = np.argsort(months, kind="stable")
            rows, hashes, months = rows.take(pa.array(order)), hashes[order], months[order]
        leaves = store_log.assign(rows)
        cuts = [0, *(np.flatnonzero(np.diff(months)) + 1).tolist(), rows.num_rows]
        try:
            for start, end in itertools.pairwise(cuts):
                self._insert_new(leaves.slice(start, end - start), hashes[start:end])
        except BaseException:
            store_log.failed()
            raise
        store_log.committed(leaves)

    def _insert_new(self, rows: pa.Table, hashes: np.ndarray) -> None:
        """Insert rows that were not stored at lookup; every retry looks up again first (point 3).

        An attempt that failed after its insert committed (wholly, or one month's part of it)
        left those rows stored: the retry inserts only the rest. The append still reports them
        as stored by it, which they were.
        """
        first = True

        @retrying
        def attempt() -> None:
            nonlocal first
            todo, todo_hashes = (rows, hashes) if first else self._drop_stored(rows, hashes)
            first = False
            if todo.num_rows:
                self._insert(todo, todo_hashes)

        attempt()

    @retrying
    def _drop_stored(self, rows: pa.Table, hashes: np.ndarray) -> tuple[pa.Table, np.ndarray]:
        """`rows` (and their id hashes) without the ids already stored, whatever their timestamp.

        A single writer asks the engine only about ids its hash filter may have seen; the exact
        lookup is a key lookup in the parts' p_ids projection.
        """
        ids = rows.column("event_id")
        probe = ids
        if self.single_writer:
            known = self._id_filter().maybe_contains(hashes)
            if not known.any():
                return rows, hashes
            probe = pc.filter(ids, pa.array(known))
        stored: list[str] = []
        for offset in range(0, len(probe), _LOOKUP_CHUNK):
            chunk = probe.slice(offset, _LOOKUP_CHUNK).to_pylist()
            found = self._arrow(q.existing_ids(chunk))
            stored.extend(found.column("event_id").to_pylist())
        if not stored:
            return rows, hashes
        keep = pc.invert(pc.is_in(ids, value_set=pa.array(stored, pa.string())))
        return rows.filter(keep), hashes[keep.to_numpy(zero_copy_only=False)]

    def _id_filter(self) -> IdFilter:
        """The single writer's filter of stored-id hashes, loaded from audit_events once per process."""
        with self._writer.lock:
            ids = self._writer.ids
            if ids is None:
                with self._conn().query_arrow_stream(q.all_ids()) as stream:
                    ids = self._writer.load(_id_chunks(stream))
            return ids

    def _insert(self, rows: pa.Table, hashes: np.ndarray | None = None) -> None:
        """One insert of rows whose ids are distinct and not stored (no retry here: see _insert_new).

        `hashes` are the rows' id hashes when the caller has them already (hashing is ~2 ms per
        50k ids). A single writer records them first: should the insert fail or be cut short by
        a crash, they are only "maybe stored", which the exact lookup settles next time.
        """
        hashes = np.sort(hash_ids(rows.column("event_id")) if hashes is None else hashes)
        if self.single_writer:
            self._id_filter().add(hashes)
        settings = {
            # The rows' ids are distinct (append keeps the first of each): nothing to collapse, so
            # skip ReplacingMergeTree's row-by-row merge of the new part (~20 % of an insert).
            "optimize_on_insert": "0",
        }
        if self.cluster:
            # Replicated tables commit the block id with the part (point 4 of the module docstring).
            settings["insert_deduplication_token"] = hashlib.sha256(hashes.tobytes()).hexdigest()
            # Acknowledge only once the shard has the rows, not a local queue.
            settings["distributed_foreground_insert"] = "1"
        else:
            settings["insert_deduplicate"] = "0"
        self._conn().insert_arrow("audit_events", rows, settings=settings)

    # -- reads ---------------------------------------------------------------------------------

    @retrying
    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """Matching events in (timestamp, event_id) order, keyset-paged."""
        if page.limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        return _events(self._arrow(q.page(flt, page.limit, page.order, page.after, final=self._final)))

    @retrying
    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """The key of the page's last row when more rows follow it (two key columns, no rows)."""
        if page.limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        keys = self._arrow(q.page_end(flt, page.limit, page.order, page.after, final=self._final)).to_pylist()
        if len(keys) < 2:
            return None
        return Cursor(timestamp_us=int(keys[0]["ts_us"]), event_id=str(keys[0]["event_id"]))

    @retrying
    def get_event(self, event_id: str, /) -> pa.Table:
        """Zero or one row."""
        return _events(self._arrow(q.get_event(event_id, final=self._final)))

    @retrying
    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """Matching events after leaf `after`, in leaf order."""
        if limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        return _events(self._arrow(q.after_leaf(flt, after, limit, final=self._final)))

    @retrying
    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """Every event on that exact cell, newest first."""
        return _events(
            self._arrow(q.cell_history(workbook_name, sheet_name, cell_address, limit, final=self._final))
        )

    @retrying
    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """Exact figures over the deduplicated matching events: two queries.

        The count lists come from the p_hour_* projections when this is the single writer and the
        filter is whole hours of time only; otherwise from one grouping-sets pass over the events.
        """
        unfiltered = flt == EventFilter()
        window = q.rollup_window(flt) if self.single_writer else None
        row = self._arrow(q.totals(flt, final=self._final, sessions_from_rollup=unfiltered)).to_pylist()[0]
        dims = self._arrow(q.dim_counts_rollup(window) if window else q.dim_counts(flt, final=self._final))
        lists = {name: _ranked(dims, code, name) for code, name in q.DIMS.items()}
        empty = int(row["total_events"]) == 0
        return Stats(
            total_events=int(row["total_events"]),
            unique_users=lists["user_name"].num_rows,
            unique_workbooks=lists["workbook_name"].num_rows,
            unique_sessions=int(row["unique_sessions"]),
            first_event_at=None if empty else _utc(row["first_event_at"]),
            last_event_at=None if empty else _utc(row["last_event_at"]),
            by_event_type=lists["event_type"],
            top_users=lists["user_name"].slice(0, top),
            top_workbooks=lists["workbook_name"].slice(0, top),
        )

    @retrying
    def timeseries(
        self,
        flt: EventFilter,
        bucket: Bucket,
        group_by: GroupBy | None,
        max_points: int = MAX_SERIES_POINTS,
        /,
    ) -> pa.Table:
        """Zero-filled counts per bucket (and group); see storage.clickhouse.timeseries.

        Hour, day and week buckets over whole hours come from the p_hour_* projections (single
        writer only: without FINAL, a racing writer's copy would count twice).
        """
        width, offset = bucket_width(bucket)
        lo, hi = bucket_bounds(flt.start, flt.end, width, offset)
        window = q.rollup_window(flt) if self.single_writer and bucket != "minute" else None
        query = (
            q.timeseries_rollup(window, width, offset, group_by)
            if window
            else q.timeseries_counts(flt, width, offset, group_by, final=self._final)
        )
        if lo is not None and hi is not None and hi - lo + 1 > max_points:  # the window alone is too wide
            raise too_many_points(max_points, hi - lo + 1, 1)
        counts = self._arrow(q.capped(query, max_points + 1))
        return zero_fill(counts, lo, hi, width, offset, group_by is not None, max_points)

    @retrying
    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """Sessions newest first, from the p_sessions projection (no FINAL needed: idempotent states)."""
        return self._arrow(q.sessions_page(flt, limit, after)).cast(SESSION_SCHEMA)

    @retrying
    def session(self, session_id: str, /) -> pa.Table:
        """One session from the p_sessions projection: zero or one row."""
        return self._arrow(q.session_one(session_id)).cast(SESSION_SCHEMA)

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        """Matching events, oldest first, as year=/month= Parquet plus manifest.json (local paths).

        Rows come as keyset pages of about EXPORT_BATCH_BYTES (storage.keyset), each page retried
        on its own: one sorted query over everything would sort the whole export in memory first.
        """
        if "://" in destination and not destination.startswith("file://"):
            raise InvalidQueryError("this store exports to a local directory only")
        target = Path(destination.removeprefix("file://"))
        snap, cut = export_log(self.transparency_log, flt)
        pages = keyset_tables(self.query, cut, "asc", None, batch_bytes=EXPORT_BATCH_BYTES)
        manifest = write_partitioned((b for page in pages for b in page.to_batches()), target)
        if snap is not None and self.transparency_log is not None:
            write_log(self.transparency_log, snap, local_output(target), tree=whole_store(flt))
            manifest["log"] = {"checkpoint": CHECKPOINT_PATH, "size": snap.size}
        return ExportResult(destination=str(target), manifest=manifest)

    # -- verifiable history (issue 11): any cell at any time, completeness per session -----------

    @retrying
    def cell_state(
        self, workbook_name: str, sheet_name: str, cell_address: str, at: dt.datetime, /
    ) -> pa.Table:
        """The last event that set the cell as of `at`: zero or one row."""
        return _events(
            self._arrow(q.cell_state(workbook_name, sheet_name, cell_address, at, final=self._final))
        )

    @retrying
    def workbook_state(
        self, workbook_name: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, /
    ) -> pa.Table:
        """Every cell's last setting event as of `at`, one keyset page in (sheet, cell) order."""
        if limit < 1:
            raise InvalidQueryError("limit must be at least 1")
        return _events(self._arrow(q.workbook_state(workbook_name, at, limit, after, final=self._final)))

    @retrying
    def session_numbers(self, session_id: str, /) -> pa.Table:
        """Events and session ends per session_seq of one session (one grouped read)."""
        return self._arrow(q.session_numbers(session_id, final=self._final)).cast(NUMBERS_SCHEMA)

    @retrying
    def session_seq_events(self, session_id: str, seqs: list[int], /) -> pa.Table:
        """The session's events carrying one of `seqs`."""
        return _events(self._arrow(q.session_seq_events(session_id, seqs, final=self._final)))

    # -- the archive tier (storage.archive.tiers) ------------------------------------------------

    @retrying
    def months(self) -> dict[int, int]:
        """Rows held per UTC month (YYYYMM): what the archive mover may move."""
        table = self._arrow(q.months(final=self._final))
        return dict(zip(table.column("month").to_pylist(), table.column("n").to_pylist(), strict=True))

    @retrying
    def month_fingerprint(self, month: int, /) -> tuple[int, int]:
        """Rows and content fingerprint (storage.archive.fingerprint) of one month, deduplicated."""
        row = self._arrow(q.month_fingerprint(month, final=self._final)).to_pylist()[0]
        return int(row["n"]), int(row["fp"])

    def drop_month(self, month: int, /) -> None:
        """Drop a month's partition (and with it its projections): after the archive committed it.

        Stored-id hashes of the single writer's filter stay: they only make a later id "maybe
        stored", which the exact lookup settles.
        """
        sql, params = q.drop_month(month)
        with self._writer.lock:
            self._conn().command(sql, parameters=params)

    @retrying
    def session_ids(self, flt: EventFilter, /) -> pa.Array:
        """Distinct non-null session ids of the matching events."""
        column = self._arrow(q.session_ids(flt, final=self._final)).column("sid")
        return column.combine_chunks().cast(pa.string())

    @retrying
    def session_partials(self, session_ids: list[str], /) -> pa.Table:
        """Figures of each given session over this store, with its first event's key (storage.archive.sessions)."""
        from storage.archive.sessions import PARTIAL_SCHEMA

        parts = [
            self._arrow(q.session_partials(session_ids[i : i + _LOOKUP_CHUNK])).cast(PARTIAL_SCHEMA)
            for i in range(0, len(session_ids), _LOOKUP_CHUNK)
        ]
        return pa.concat_tables(parts) if parts else PARTIAL_SCHEMA.empty_table()

    def internals(self) -> dict[str, float]:
        """Parts, merges and mutations of the events table from system tables (storage.internals).

        No retry: a scrape asks again soon. On a cluster, the figures are those of the connected
        node's local table.
        """
        table = q.LOCAL_EVENTS if self.cluster else q.EVENTS
        row = self._arrow(q.table_internals(self.database, table)).to_pylist()[0]
        return {f"clickhouse_{name}": float(value or 0) for name, value in row.items()}


def engine_options(memory_mb: int) -> dict[str, str]:
    """Startup settings of the embedded engine: its memory is bounded by `memory_mb`, not by the data.

    Left alone, the engine sizes its caches (marks, primary index, skip-index marks) at 5 GiB each
    and lets queries and merges use 90 % of the machine's RAM. Here its whole memory is capped and
    the caches get fixed shares of the cap; the uncompressed-block cache is off (reads are scans
    of fresh data, where it only costs). A query or merge past the cap fails instead of growing
    the process (merges are retried by the engine).
    """
    mib = 1024 * 1024
    return {
        "max_server_memory_usage": str(memory_mb * mib),
        "mark_cache_size": str(memory_mb * mib // 8),
        "primary_index_cache_size": str(memory_mb * mib // 16),
        "index_mark_cache_size": str(memory_mb * mib // 16),
        "uncompressed_cache_size": "0",
    }


def _id_chunks(stream: Any) -> Iterator[pa.Array]:
    for block in stream:
        column = block.column("event_id")
        yield column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _month_numbers(timestamps: pa.ChunkedArray) -> np.ndarray:
    """Months since 1970 of every UTC timestamp (the table's partition, up to its encoding)."""
    us = timestamps.cast(pa.int64()).to_numpy()
    months: np.ndarray = us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    return months


def _first_per_id(rows: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """The first row of every event_id, in input order, with the ids' 64-bit hashes.

    Distinct hashes prove distinct ids: sorting 50k hashes costs ~2 ms, a distinct count of the
    id strings ~7 ms. Only a batch with a repeated hash takes the exact grouping.
    """
    hashes = hash_ids(rows.column("event_id"))
    ordered = np.sort(hashes)
    if not (ordered[1:] == ordered[:-1]).any():
        return rows, hashes
    indexed = rows.append_column("__i", pa.array(np.arange(rows.num_rows, dtype=np.int64)))
    first = indexed.group_by("event_id", use_threads=False).aggregate([("__i", "min")])
    keep = first.column("__i_min").combine_chunks().sort()
    return rows.take(keep), hashes[keep.to_numpy()]


def _ranked(dims: pa.Table, code: int, name: str) -> pa.Table:
    """One list of (dim, key, n): (name, count) sorted by count desc, then key asc."""
    rows = dims.filter(pc.equal(dims.column("dim"), code))
    rows = rows.take(pc.sort_indices(rows, sort_keys=[("n", "descending"), ("key", "ascending")]))
    return pa.table({name: rows.column("key"), "count": rows.column("n")}).cast(_COUNT_SCHEMAS[name])


def _events(table: pa.Table) -> pa.Table:
    """An engine result in exactly EVENT_SCHEMA (string map values nullable, plain strings)."""
    return table.cast(EVENT_SCHEMA)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.astimezone(dt.UTC)
