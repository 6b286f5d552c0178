"""TieredStore: the hot store and the archive behind one EventStore, answering from both, exactly.

Each event lives in exactly one tier: the mover drops a hot month only after its archive manifest
committed, and an append drops every row whose id the archive already holds for that row's month
(a resent batch never doubles an archived event). Late events for an archived month are taken into
the hot store and moved again later as a further generation of that month, so a month may be
served by both tiers for a while, never with a shared event.

Reads where the filter's time range touches no archived file go to the hot store alone (that is
every read when nothing is archived): no cost at all. Otherwise each tier answers and the answers
are merged exactly:
- pages and cell history: both tiers' first `limit` rows, merged on (timestamp, event_id);
- stats: the hot store's complete count lists plus the archive's footer rollups (boundary files
  scanned) summed with storage.parquet.rollup.summarize; distinct sessions as the union;
- time series: both tiers' non-empty cells summed, then zero-filled once over the merged grid;
- sessions: a session with events in both tiers is merged from both tiers' partial figures
  (storage.archive.sessions); every other session is answered by its only tier.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Final

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.archive.exporter import export_events
from storage.archive.gate import MonthGate, ViewLock
from storage.archive.history import later_event, merge_workbook_pages
from storage.archive.holds import HoldBook
from storage.archive.location import Location, ObjectStoreOptions, open_location
from storage.archive.manifest import FileEntry, ManifestError, month_bounds_us
from storage.archive.reader import ArchiveReader
from storage.archive.sessions import merge_partials
from storage.base import (
    MAX_SERIES_POINTS,
    AppendResult,
    Bucket,
    Cursor,
    EventFilter,
    EventStore,
    ExportResult,
    GroupBy,
    HealthCheck,
    Order,
    Page,
    SessionFilter,
    Stats,
)
from storage.errors import StoreError, TerminalStoreError, TransientStoreError
from storage.keyset import EXPORT_BATCH_BYTES, keyset_tables, last_key
from storage.layers import layers
from storage.log.export_log import CHECKPOINT_PATH, export_log, whole_store, write_log
from storage.parquet import series
from storage.parquet.rollup import ROLLUP_SCHEMA, Parts, summarize
from storage.schema import EVENT_SCHEMA

__all__ = ["TieredStore", "archive_errors", "month_keys"]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
#: "Every entry" for a top list that must be merged with another tier's before it is cut.
_ALL: Final = 2**31 - 1


def _us(value: dt.datetime | None) -> int | None:
    return None if value is None else (value - _EPOCH) // dt.timedelta(microseconds=1)


def _dt(us: int | None) -> dt.datetime | None:
    return None if us is None else _EPOCH + dt.timedelta(microseconds=us)


def month_keys(timestamps: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """YYYYMM of every UTC timestamp."""
    us = pc.cast(timestamps, pa.int64()).to_numpy(zero_copy_only=False)
    months = us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    result: np.ndarray = (1970 + months // 12) * 100 + months % 12 + 1
    return result


@contextmanager
def archive_errors(kind: type[StoreError] = TransientStoreError) -> Iterator[None]:
    """The archive's I/O and manifest failures as store errors (503 at the HTTP edge, not 500)."""
    try:
        yield
    except StoreError:
        raise
    except (OSError, duckdb.Error, ManifestError, pa.ArrowException) as exc:  # a damaged file too
        raise kind(f"archive: {exc}") from exc


def _merged(tables: Iterable[pa.Table], order: Order, limit: int) -> pa.Table:
    """The first `limit` rows of tables each in `order`, by (timestamp, event_id)."""
    direction = "descending" if order == "desc" else "ascending"
    table = pa.concat_tables([t.cast(EVENT_SCHEMA) for t in tables])
    return table.sort_by([("timestamp", direction), ("event_id", direction)]).slice(0, limit)


def _parts_of(stats: Stats) -> Parts:
    """A hot Stats' complete count lists in the shape of a rollup (storage.parquet.rollup)."""

    def dim(code: int, t: pa.Table | None) -> pa.Table:
        if t is None or t.num_rows == 0:
            return ROLLUP_SCHEMA.empty_table()
        return pa.table(
            [
                pa.array([code] * t.num_rows, pa.int8()),
                t.column(0).cast(pa.string()),
                t.column(1).cast(pa.int64()),
                pa.nulls(t.num_rows, pa.int64()),
            ],
            schema=ROLLUP_SCHEMA,
        )

    return (
        dim(0, stats.by_event_type),
        dim(1, stats.top_users),
        dim(2, stats.top_workbooks),
        dim(3, None),
        dim(4, None),
    )


class TieredStore:
    """An EventStore over `hot` and the archive at `location` (see the module docstring)."""

    def __init__(
        self, hot: EventStore, location: Location, *, options: ObjectStoreOptions | None = None
    ) -> None:
        self.hot = hot
        self.name = hot.name
        self.location = location
        self.options = options or location.options
        self.reader = ArchiveReader(location)
        self.gate = MonthGate()
        self.view = ViewLock()
        self.holds = HoldBook(location)
        self._both_lock = threading.Lock()
        self._both: set[str] | None = None
        self._both_version = -1
        self._pending: set[str] | None = None
        _lend_archived_leaves(hot, self.reader)

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> None:
        """Load the archive's manifests, open the hot store, finish any interrupted move.

        The manifests come first: the hot store's log counts the archived leaves when it opens.
        An unreadable archive or an edited manifest keeps the store closed (the service spools
        meanwhile): answering without a month would answer wrongly.
        """
        from storage.archive.mover import finish_interrupted_moves

        with archive_errors(TerminalStoreError):
            self.refresh()
        self.hot.open()
        with archive_errors(TerminalStoreError):
            finish_interrupted_moves(self)

    def refresh(self) -> None:
        """Reload the archive's committed months; the horizon covers every archived month."""
        months = self.reader.refresh()
        if months:
            self.gate.raise_horizon(month_bounds_us(max(months))[1])

    def protect(self, entries: list[FileEntry]) -> None:
        """Give newly committed files the S3 legal hold of any active hold overlapping them."""
        if entries and self.holds.object_lock():
            self.holds.sync_legal_holds(entries)

    def close(self) -> None:
        """Close the hot store and the archive reader."""
        try:
            self.hot.close()
        finally:
            self.reader.close()

    def health(self) -> HealthCheck:
        """The hot store's probe, with the archive's months in `data`."""
        check = self.hot.health()
        return dataclasses.replace(
            check,
            data={**check.data, "archived_months": len(self.reader.months()), "archive": self.location.url},
        )

    # -- writes --------------------------------------------------------------------------------

    def append(self, batch: pa.Table, /) -> AppendResult:
        """Append to the hot store, dropping rows whose id the archive holds for their month."""
        if batch.num_rows == 0:
            return self.hot.append(batch)
        ts = batch.column("timestamp")
        first = pc.min(pc.cast(ts, pa.int64())).as_py()
        with self.gate.admit_fast(int(first)) as fast:
            if fast:
                result = self.hot.append(batch)
                self._note_sessions(batch)
                return result
        keys = month_keys(ts)
        with self.gate.admit_months({int(m) for m in np.unique(keys)}):
            fresh = self._drop_archived(batch, keys)
            result = self.hot.append(fresh)
            self._note_sessions(fresh)
        return AppendResult(stored=result.stored, duplicates=batch.num_rows - result.stored)

    def _drop_archived(self, batch: pa.Table, keys: np.ndarray) -> pa.Table:
        """`batch` without the rows whose id the archive holds for the row's month."""
        archived = set(self.reader.months())
        drop = np.zeros(batch.num_rows, dtype=np.bool_)
        ids = batch.column("event_id")
        for month in sorted({int(m) for m in np.unique(keys)} & archived):
            rows = keys == month
            wanted = pc.filter(ids, pa.array(rows)).to_pylist()
            held = self.reader.id_hits(month, wanted)
            if held:
                drop |= rows & np.asarray(pc.is_in(ids, value_set=pa.array(sorted(held), pa.string())))
        return batch.filter(pa.array(~drop)) if drop.any() else batch

    def _note_sessions(self, batch: pa.Table) -> None:
        """Keep the set of sessions with events in both tiers a superset of the truth."""
        if batch.num_rows == 0 or not self.reader.months():
            return
        archived = self.reader.all_session_ids()
        new = {
            s for s in pc.unique(batch.column("session_id")).to_pylist() if s is not None and s in archived
        }
        if not new:
            return
        with self._both_lock:
            if self._both is not None:
                self._both |= new
            if self._pending is not None:
                self._pending |= new

    def _spanning(self) -> set[str]:
        """Sessions with events in both tiers (a superset: merging a one-tier session changes nothing)."""
        version = self.reader.version
        with self._both_lock:
            if self._both is not None and self._both_version == version:
                return set(self._both)
            self._pending = set()
        try:
            hot_ids: Any = self.hot.session_ids(EventFilter())  # type: ignore[attr-defined]
            found = set(hot_ids.to_pylist()) & self.reader.all_session_ids()
        except BaseException:
            with self._both_lock:
                self._pending = None
            raise
        with self._both_lock:
            self._both = found | (self._pending or set())
            self._both_version = version
            self._pending = None
            return set(self._both)

    # -- reads ---------------------------------------------------------------------------------

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """A keyset page: both tiers' pages merged when the range touches the archive."""
        with self.view.shared(), archive_errors():
            hot = self.hot.query(flt, page)
            if not self.reader.overlaps(flt.start, flt.end):
                return hot
            return _merged([hot, self.reader.query(flt, page)], page.order, page.limit)

    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """The page's last key when more rows follow; over the archive by walking keyset pages.

        Memory stays at one page; the rows are read once more by the streamed read that follows.
        """
        with self.view.shared(), archive_errors():
            if not self.reader.overlaps(flt.start, flt.end):
                return self.hot.page_end(flt, page)
        seen, last = 0, None
        for table in keyset_tables(
            self.query, flt, page.order, page.after, batch_bytes=EXPORT_BATCH_BYTES, max_rows=page.limit + 1
        ):
            if seen + table.num_rows > page.limit:
                return last_key(table.slice(0, page.limit - seen)) if page.limit > seen else last
            seen += table.num_rows
            last = last_key(table)
        return None

    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """Both tiers' first `limit` leaves after `after`, merged in leaf order.

        Archived months keep their leaves, so a resume point older than a move still finds every
        later leaf; the archive is asked only when it holds a leaf past `after` (ArchiveReader.leaf_end).
        """
        with self.view.shared(), archive_errors():
            hot = self.hot.after_leaf(flt, after, limit)
            if not self.reader.overlaps(flt.start, flt.end) or self.reader.leaf_end() <= after + 1:
                return hot
            archived = self.reader.after_leaf(flt, after, limit)
            both = pa.concat_tables([hot.cast(EVENT_SCHEMA), archived.cast(EVENT_SCHEMA)])
            return both.sort_by("leaf_index").slice(0, limit)

    def get_event(self, event_id: str, /) -> pa.Table:
        """From the hot store, else from the archive."""
        with self.view.shared(), archive_errors():
            found = self.hot.get_event(event_id)
            if found.num_rows or not self.reader.months():
                return found
            return self.reader.get_event(event_id)

    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """Both tiers' newest `limit` changes of the cell, merged."""
        with self.view.shared(), archive_errors():
            hot = self.hot.cell_history(workbook_name, sheet_name, cell_address, limit)
            if not self.reader.months():
                return hot
            archived = self.reader.cell_history(workbook_name, sheet_name, cell_address, limit)
            return _merged([hot, archived], "desc", limit)

    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """Exact figures over both tiers (see the module docstring)."""
        with self.view.shared(), archive_errors():
            return self._stats(flt, top)

    def _stats(self, flt: EventFilter, top: int) -> Stats:
        if not self.reader.overlaps(flt.start, flt.end):
            return self.hot.stats(flt, top)
        hot = self.hot.stats(flt, _ALL)
        parts, bounds = self.reader.stats_parts(flt)
        archived_sessions = {s for p in parts for s in p[3].column("key").to_pylist()}
        shared = self._spanning() & archived_sessions
        if shared and hot.unique_sessions:
            hot_ids: Any = self.hot.session_ids(flt)  # type: ignore[attr-defined]
            shared &= set(hot_ids.to_pylist())
        else:
            shared = set()
        s = summarize([*parts, _parts_of(hot)], top)
        if hot.total_events:
            bounds.append((_us(hot.first_event_at) or 0, _us(hot.last_event_at) or 0))
        return Stats(
            total_events=s.total_events,
            unique_users=s.unique_users,
            unique_workbooks=s.unique_workbooks,
            unique_sessions=s.unique_sessions + hot.unique_sessions - len(shared),
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
        """Both tiers' non-empty cells summed, zero-filled once over the merged grid."""
        with self.view.shared(), archive_errors():
            return self._timeseries(flt, bucket, group_by, max_points)

    def _timeseries(
        self, flt: EventFilter, bucket: Bucket, group_by: GroupBy | None, max_points: int
    ) -> pa.Table:
        hot = self.hot.timeseries(flt, bucket, group_by, max_points)
        if not self.reader.overlaps(flt.start, flt.end):
            return hot
        nonzero = hot.filter(pc.greater(hot.column("count"), 0))
        hot_counts = pa.table(
            [pc.cast(nonzero.column("ts"), pa.int64()), nonzero.column("group"), nonzero.column("count")],
            schema=series.COUNTS_SCHEMA,
        )
        archived = self.reader.timeseries_counts(flt, bucket, group_by, max_points + 1)
        counts = series.combine([hot_counts, archived])
        if counts.num_rows > max_points:
            raise series.too_many_points(max_points)
        bounds = series.span(counts, _us(flt.start), _us(flt.end), bucket)
        if bounds is None:
            return hot.schema.empty_table()
        grouped = group_by is not None
        series.check_grid(counts, *bounds, bucket, grouped, max_points)
        return self.reader.fill(counts, bucket, grouped, *bounds).cast(hot.schema)

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """Sessions newest first; a session in both tiers is merged from both (see the module docstring)."""
        with self.view.shared(), archive_errors():
            return self._sessions(flt, limit, after)

    def _sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None) -> pa.Table:
        if not self.reader.months():
            return self.hot.sessions(flt, limit, after)
        both = self._spanning()
        hot = self.hot.sessions(flt, limit + len(both), after)
        schema = hot.schema
        parts = [_without(hot, both), _without(self.reader.sessions(flt, limit + len(both), after), both)]
        if both:
            parts.append(self._merged_sessions(sorted(both), flt, after, schema))
        table = pa.concat_tables([p.cast(schema) for p in parts])
        order = [("start_time", "descending"), ("session_id", "descending")]
        return table.sort_by(order).slice(0, limit)

    def _merged_sessions(
        self, ids: list[str], flt: SessionFilter, after: tuple[dt.datetime, str] | None, schema: pa.Schema
    ) -> pa.Table:
        """Whole-session figures of sessions in both tiers, filtered as `sessions` filters."""
        hot_partials: Any = self.hot.session_partials(ids)  # type: ignore[attr-defined]
        merged = merge_partials([hot_partials, self.reader.session_partials(ids)], schema).to_pylist()
        if flt.start is not None or flt.end is not None:
            window = EventFilter(start=flt.start, end=flt.end)
            hot_hits: Any = self.hot.session_ids(window)  # type: ignore[attr-defined]
            hits = set(hot_hits.to_pylist()) | self.reader.session_ids(window)
            merged = [r for r in merged if r["session_id"] in hits]
        if flt.user_name is not None:
            merged = [r for r in merged if r["user_name"] == flt.user_name]
        if after is not None:
            merged = [r for r in merged if (r["start_time"], r["session_id"]) < after]
        return pa.Table.from_pylist(merged, schema=schema)

    def session(self, session_id: str, /) -> pa.Table:
        """One session's figures over both tiers."""
        with self.view.shared(), archive_errors():
            return self._session(session_id)

    def _session(self, session_id: str) -> pa.Table:
        hot = self.hot.session(session_id)
        if not self.reader.months():
            return hot
        archived = self.reader.session_partials([session_id])
        if archived.num_rows == 0:
            return hot
        hot_partials: Any = self.hot.session_partials([session_id])  # type: ignore[attr-defined]
        return merge_partials([hot_partials, archived], hot.schema)

    # -- verifiable history (storage.archive.history) --------------------------------------------

    def cell_state(
        self, workbook_name: str, sheet_name: str, cell_address: str, at: dt.datetime, /
    ) -> pa.Table:
        """The later of the two tiers' last setting events of the cell as of `at`."""
        with self.view.shared(), archive_errors():
            hot = self.hot.cell_state(workbook_name, sheet_name, cell_address, at)
            if not self.reader.overlaps(None, at + dt.timedelta(microseconds=1)):
                return hot
            return later_event([hot, self.reader.cell_state(workbook_name, sheet_name, cell_address, at)])

    def workbook_state(
        self, workbook_name: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, /
    ) -> pa.Table:
        """Both tiers' pages of the workbook's cells as of `at`, merged exactly."""
        with self.view.shared(), archive_errors():
            hot = self.hot.workbook_state(workbook_name, at, limit, after)
            if not self.reader.overlaps(None, at + dt.timedelta(microseconds=1)):
                return hot
            archived = self.reader.workbook_state(workbook_name, at, limit, after)
            return merge_workbook_pages([hot, archived], limit)

    def session_numbers(self, session_id: str, /) -> pa.Table:
        """Both tiers' per-number counts (added up by storage.log.completeness)."""
        with self.view.shared(), archive_errors():
            hot = self.hot.session_numbers(session_id)
            if not self.reader.months():
                return hot
            return pa.concat_tables([hot, self.reader.session_numbers(session_id)])

    def session_seq_events(self, session_id: str, seqs: list[int], /) -> pa.Table:
        """The session's events carrying one of `seqs`, from both tiers."""
        with self.view.shared(), archive_errors():
            hot = self.hot.session_seq_events(session_id, seqs)
            if not self.reader.months():
                return hot
            archived = self.reader.session_seq_events(session_id, seqs)
            return pa.concat_tables([hot.cast(EVENT_SCHEMA), archived.cast(EVENT_SCHEMA)])

    def export(
        self, flt: EventFilter, destination: str, /, *, on_rows: Callable[[int], None] | None = None
    ) -> ExportResult:
        """Matching events of both tiers to a path, file://, s3:// or abfs:// (storage.archive.exporter).

        Cut at a signed checkpoint, with `log/` beside the files (storage.log.export_log);
        `on_rows` hears of every batch written (the CLI's progress).
        """
        location = open_location(destination, self.options)
        store_log: Any = getattr(self.hot, "transparency_log", None)  # the hot store's log (storage.log)
        snap, cut = export_log(store_log, flt)
        manifest = export_events(self.query, cut, location, on_rows=on_rows)
        if snap is not None:
            written = write_log(store_log, snap, location.open_output, tree=whole_store(flt))
            location.make_durable(written)
            manifest["log"] = {"checkpoint": CHECKPOINT_PATH, "size": snap.size}
        return ExportResult(
            destination=location.url if not location.is_local else location.base, manifest=manifest
        )


def _lend_archived_leaves(hot: object, reader: ArchiveReader) -> None:
    """Give the store under `hot`'s wrappers the archive's leaves, for its log's open.

    Without them a store whose months moved would rebuild tree files (lost, or a fresh log
    directory) from the hot leaves alone: refused, since they are not contiguous, or, with every
    month moved, restarted at leaf 0 over indexes the archive already holds.
    """
    for layer in layers(hot):
        lend = getattr(layer, "use_archived_leaves", None)
        if lend is not None:
            lend(reader)
            return


def _without(table: pa.Table, ids: set[str]) -> pa.Table:
    if not ids or table.num_rows == 0:
        return table
    return table.filter(
        pc.invert(pc.is_in(table.column("session_id"), value_set=pa.array(sorted(ids), pa.string())))
    )
