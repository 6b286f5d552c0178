"""The verified move of hot months into the archive.

Each month goes through five steps, and a kill -9 after any of them loses nothing and doubles
nothing on the next run:
1. `files_written`: the hot month is streamed in (timestamp, event_id) order into new files named
   for the next generation (rows the archive already holds for the month are skipped and their
   fingerprint noted: a move interrupted after its commit, or a resend).
2. `read_back`: every file is read back from the destination: sha256 and size of its bytes, rows
   from its footer, fingerprint of its ids (DuckDB over the destination) must equal what was written.
3. `reconciled`: with the month frozen for appends (storage.archive.gate), the hot store's own count
   and fingerprint of the month must equal the written rows plus the skipped ones.
4. `committed`: the generation's manifest is created exclusively: the commit point. Losing that
   race (another archiver committed the generation) or any mismatch before it deletes this run's
   files and drops nothing.
5. `dropped`: the hot month is dropped (a partition, or a manifest swap), within the same exclusive
   view swap as the reader's reload, so no read sees the month twice or not at all.
A crash after 1-3 leaves orphan files no manifest lists: never read, deleted by the next move of
the month. A crash after 4 leaves the month in both tiers: opening the store (or the next run)
sees that the hot month equals the newest generation exactly and finishes the drop.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.archive.fingerprint import add, hex_fp, parse_fp
from storage.archive.manifest import (
    FileEntry,
    MonthManifest,
    manifest_generation,
    month_bounds_us,
    month_dir,
    month_text,
)
from storage.archive.writer import batch_fingerprint, write_sorted
from storage.base import EventFilter
from storage.errors import StoreError
from storage.keyset import EXPORT_BATCH_BYTES, keyset_tables
from storage.log.export_log import publish_log

if TYPE_CHECKING:
    from storage.archive.tiers import TieredStore

__all__ = [
    "ArchiveBusyError",
    "ArchiveReport",
    "ArchiveUnsupportedError",
    "MonthMove",
    "MonthlyStore",
    "ReconcileError",
    "archive_months",
    "finish_interrupted_moves",
    "run_lock",
]

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
STEPS: Final = ("files_written", "read_back", "reconciled", "committed", "dropped")
_RUN_LOCKS: dict[str, threading.Lock] = {}
_RUN_LOCKS_GUARD = threading.Lock()

Step = Callable[[str, int], None]


@runtime_checkable
class MonthlyStore(Protocol):
    """What a hot store provides for the mover, besides the EventStore reads."""

    def months(self) -> dict[int, int]:
        """Rows held per UTC month (YYYYMM)."""

    def month_fingerprint(self, month: int, /) -> tuple[int, int]:
        """Rows and fingerprint of one month."""

    def drop_month(self, month: int, /) -> None:
        """Drop one month, atomically."""


class ArchiveBusyError(StoreError):
    """Another archive or retention run holds the archive; this one changed nothing."""


class ArchiveUnsupportedError(StoreError):
    """The hot store cannot take part in a verified move (no month operations, or several writers)."""


class ReconcileError(StoreError):
    """What was written does not match its source: nothing was committed or dropped."""


@dataclass(frozen=True, slots=True)
class MonthMove:
    """What happened (or, dry, would happen) to one month."""

    month: str
    rows: int
    files: int = 0
    generation: int | None = None
    status: str = "moved"


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    """One archive run: the months moved (or that would be), in order."""

    before: str
    dry_run: bool
    months: list[MonthMove] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON answer of POST /api/archive and `govtrack archive --json`."""
        return {
            "before": self.before,
            "dry_run": self.dry_run,
            "months": [
                {
                    "month": m.month,
                    "rows": m.rows,
                    "files": m.files,
                    "generation": m.generation,
                    "status": m.status,
                }
                for m in self.months
            ],
            "rows": sum(m.rows for m in self.months),
            "files": sum(m.files for m in self.months),
        }


def run_lock(url: str) -> threading.Lock:
    """The process-wide lock of one archive location: one archive or retention run at a time."""
    with _RUN_LOCKS_GUARD:
        return _RUN_LOCKS.setdefault(url, threading.Lock())


def _hot(tiered: TieredStore) -> Any:
    """The hot store, checked to support moves by a single writer."""
    hot = tiered.hot
    if not isinstance(hot, MonthlyStore):
        raise ArchiveUnsupportedError(f"the {hot.name} store cannot move months to an archive")
    if getattr(hot, "single_writer", True) is False:
        raise ArchiveUnsupportedError(
            "archiving needs the only writer of the hot store (the embedded engine or the Parquet store): "
            "with several writers a late event could land between the reconcile and the drop"
        )
    return hot


def archive_months(
    tiered: TieredStore, before: int, *, dry_run: bool = False, on_step: Step | None = None
) -> ArchiveReport:
    """Move every hot month older than `before` (YYYYMM, exclusive), oldest first.

    Raises ArchiveBusyError when another run holds the archive, ReconcileError on a mismatch (the
    months before it stay moved, that month and the later ones stay hot).
    """
    hot = _hot(tiered)
    lock = run_lock(tiered.location.url)
    if not lock.acquire(blocking=False):
        raise ArchiveBusyError("an archive or retention run is in progress: try again when it ends")
    try:
        months = {m: n for m, n in hot.months().items() if m < before}
        report = ArchiveReport(month_text(before), dry_run)
        if dry_run or not months:
            report.months.extend(MonthMove(month_text(m), n, status="would_move") for m, n in months.items())
            return report
        tiered.gate.raise_horizon(month_bounds_us(max(months))[1])  # these months' appends now look up
        for month in months:
            report.months.append(_move(tiered, hot, month, on_step or _no_step))
        publish_log(getattr(hot, "transparency_log", None), tiered.location)  # storage.log.export_log
        return report
    finally:
        lock.release()


def _no_step(step: str, month: int) -> None:
    return None


def _move(tiered: TieredStore, hot: Any, month: int, step: Step) -> MonthMove:
    """One month through the five steps of the module docstring."""
    location = tiered.location
    current = _newest(tiered, month)
    generation = (current.generation if current else 0) + 1
    kept = current.files if current is not None else ()
    _remove_orphans(tiered, month, current)
    skipped = _Skipped()
    token = uuid.uuid4().hex[:8]
    written: list[str] = []
    committed = False
    try:
        entries = write_sorted(
            location,
            _rows_to_write(tiered, hot, month, bool(kept), skipped),
            lambda _m, n: f"g{generation:06d}-{token}-{n:04d}.parquet",
            generation=generation,
            written=written,
        )
        step("files_written", month)
        read_back(tiered, entries)
        step("read_back", month)
        with tiered.gate.frozen(month):
            _reconcile(hot, month, entries, skipped)
            step("reconciled", month)
            manifest = MonthManifest(month, generation, (*kept, *entries), _now(), tiered.name)
            with tiered.view.exclusive():
                if entries:
                    if not location.create_exclusive(manifest.relpath, manifest.to_json()):
                        raise ArchiveBusyError(
                            f"another archiver committed {month_text(month)} generation {generation} first"
                        )
                    committed = True
                    step("committed", month)
                    tiered.refresh()
                tiered.protect(entries)
                hot.drop_month(month)
            step("dropped", month)
    except BaseException:
        if not committed:
            for rel in written:
                location.delete(rel)
        raise
    status = "moved" if entries else "finished"
    return MonthMove(
        month_text(month), sum(e.rows for e in entries), len(entries), generation if entries else None, status
    )


@dataclass
class _Skipped:
    """Hot rows the archive already held: their count and fingerprint, for the reconcile."""

    rows: int = 0
    fingerprint: int = 0


def _month_batches(hot: Any, month: int) -> Iterator[pa.RecordBatch]:
    """The hot month in (timestamp, event_id) order, read so that no part is read twice.

    A store with `read_month` streams one sorted read (the Parquet store: its compacted files are
    clustered by cell, so keyset pages would each scan the month). Otherwise day by day, keyset
    pages within each day (ClickHouse: the day leads its sorting key, so a day's pages read only
    that day's granules); days are disjoint and in order, so the concatenation is sorted.
    """
    if hasattr(hot, "read_month"):
        yield from hot.read_month(month)
        return
    start_us, end_us = month_bounds_us(month)
    day_us = 86_400_000_000
    for lo in range(start_us, end_us, day_us):
        start = _EPOCH + dt.timedelta(microseconds=lo)
        end = _EPOCH + dt.timedelta(microseconds=min(lo + day_us, end_us))
        for page in keyset_tables(
            hot.query, EventFilter(start=start, end=end), "asc", None, batch_bytes=EXPORT_BATCH_BYTES
        ):
            yield from page.to_batches()


def _rows_to_write(
    tiered: TieredStore, hot: Any, month: int, archived: bool, skipped: _Skipped
) -> Iterator[pa.RecordBatch]:
    """The hot month in (timestamp, event_id) order, without the rows the archive already holds."""
    for batch in _month_batches(hot, month):
        if archived and batch.num_rows:
            ids = batch.column("event_id")
            held = tiered.reader.id_hits(month, ids.to_pylist())
            if held:
                value_set = pa.array(sorted(held), pa.string())
                skipped.rows += len(held)
                skipped.fingerprint = add(skipped.fingerprint, batch_fingerprint(value_set))
                batch = batch.filter(pc.invert(pc.is_in(ids, value_set=value_set)))
        yield batch


def read_back(tiered: TieredStore, entries: list[FileEntry]) -> None:
    """Every written file as the destination returns it: bytes, rows and ids as written."""
    location = tiered.location
    for entry in entries:
        sha, size = location.sha256(entry.path)
        if (sha, size) != (entry.sha256, entry.bytes):
            raise ReconcileError(f"{entry.path} reads back with other bytes than were written")
        rows = pq.read_metadata(location.full(entry.path), filesystem=location.fs).num_rows
        n, fp = tiered.reader.fingerprint([entry])
        if rows != entry.rows or n != entry.rows or hex_fp(fp) != entry.fingerprint:
            raise ReconcileError(f"{entry.path} reads back with other rows than were written")


def _reconcile(hot: Any, month: int, entries: list[FileEntry], skipped: _Skipped) -> None:
    n, fp = hot.month_fingerprint(month)
    rows = sum(e.rows for e in entries) + skipped.rows
    written = add(skipped.fingerprint, *(parse_fp(e.fingerprint) for e in entries))
    if (n, fp) != (rows, written):
        raise ReconcileError(
            f"{month_text(month)}: the hot store holds {n} events (fingerprint {hex_fp(fp)}), the archive "
            f"would hold {rows} ({hex_fp(written)}): nothing was dropped; events arrived meanwhile, run again"
        )


def _newest(tiered: TieredStore, month: int) -> MonthManifest | None:
    """The month's newest committed manifest, read from the location now (deletions included)."""
    names = [rel.rpartition("/")[2] for rel in tiered.location.list_files(month_dir(month))]
    gens = [g for g in (manifest_generation(n) for n in names) if g is not None]
    if not gens:
        return None
    rel = f"{month_dir(month)}/_manifest-g{max(gens):06d}.json"
    return MonthManifest.from_json(tiered.location.read_bytes(rel))


def _remove_orphans(tiered: TieredStore, month: int, current: MonthManifest | None) -> None:
    """Delete the month's files no committed manifest lists (earlier crashed or losing runs)."""
    listed = {f.path for f in current.files} if current is not None else set()
    for rel in tiered.location.list_files(month_dir(month)):
        name = rel.rpartition("/")[2]
        if manifest_generation(name) is None and rel not in listed:
            tiered.location.delete(rel)


def finish_interrupted_moves(tiered: TieredStore) -> list[int]:
    """Drop hot months equal to their newest archived generation (a crash between commit and drop)."""
    hot = tiered.hot
    archived = tiered.reader.months()
    if not archived or not isinstance(hot, MonthlyStore):
        return []
    finished = []
    for month in sorted(set(hot.months()) & set(archived)):
        manifest = archived[month]
        last = [f for f in manifest.files if f.generation == manifest.generation]
        want = (sum(f.rows for f in last), add(*(parse_fp(f.fingerprint) for f in last)))
        with tiered.gate.frozen(month):
            if hot.month_fingerprint(month) == want:
                with tiered.view.exclusive():
                    hot.drop_month(month)
                finished.append(month)
    return finished


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
