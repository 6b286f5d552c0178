"""Write events, already sorted by (timestamp, event_id), as `year=YYYY/month=MM/` Parquet files.

Shared by the archive mover and exports: input is streamed batch by batch (memory is one row group
plus the writer's buffers, whatever the total), split at month boundaries as they come, and rolled
over to a new file every `max_file_rows`. Each file is the event schema only (readable by any
Parquet reader), zstd, row groups of ROW_GROUP_ROWS (time pruning), bloom filters on event_id and
cell_address (dedup lookups, `get_event`, cell history), and carries its rollup in the footer
(storage.parquet.rollup), so exact statistics of an archived month need no scan.

While a file is written its bytes are hashed on their way out (sha256) and the fingerprint of its
ids is computed per batch; both go into the file's manifest entry. The mover then reads every
file back from the destination and checks them again (storage.archive.verify.read_back).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.archive.fingerprint import MASK, add, hex_fp
from storage.archive.location import Location
from storage.archive.manifest import FileEntry, month_dir, schema_fingerprint
from storage.archive.queries import FINGERPRINT_SQL
from storage.parquet.rollup import ROLLUP_KEY, encode, merge, rollup_of
from storage.schema import EVENT_SCHEMA

__all__ = ["ROW_GROUP_ROWS", "FileNamer", "batch_fingerprint", "write_sorted"]

ROW_GROUP_ROWS: Final = 65_536
DEFAULT_FILE_ROWS: Final = 2_000_000
_BLOOM: Final = {c: {"ndv": ROW_GROUP_ROWS, "fpp": 0.01} for c in ("event_id", "cell_address")}
_DICTIONARY: Final = [f.name for f in EVENT_SCHEMA if f.name not in ("event_id", "timestamp", "received_at")]

#: (month YYYYMM, number of the file within that month in this write) -> file name in the month's directory.
FileNamer = Callable[[int, int], str]


def batch_fingerprint(ids: pa.Array | pa.ChunkedArray) -> int:
    """The fingerprint (storage.archive.fingerprint) of some ids, computed by DuckDB in memory."""
    con = duckdb.connect(":memory:")
    try:
        con.register("ids", pa.table({"event_id": ids}))
        rows = con.sql(f"SELECT {FINGERPRINT_SQL} AS s FROM ids").fetchall()
    finally:
        con.close()
    return int(rows[0][0]) & MASK


class _HashingSink:
    """A write-only file object: forwards bytes to a pyarrow stream, hashing and counting them."""

    def __init__(self, out: Any) -> None:
        self._out = out
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.sha256.update(view)
        self._out.write(view)
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        return None

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._out.close()
            self.closed = True


@dataclass
class _OpenFile:
    """The file being written: where, its writer, and what its manifest entry will say."""

    rel: str
    sink: _HashingSink
    writer: pq.ParquetWriter
    rows: int = 0
    min_us: int | None = None
    max_us: int = 0
    fingerprint: int = 0
    rollups: list[pa.Table] = field(default_factory=list)
    pending: list[pa.RecordBatch] = field(default_factory=list)
    pending_rows: int = 0


def _month_keys(batch: pa.RecordBatch) -> pa.Array:
    ts = batch.column("timestamp")
    return pc.add(pc.multiply(pc.year(ts), 100), pc.month(ts)).cast(pa.int64())


def _by_month(batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
    """Runs of one month in a sorted batch, in order (no copy when the batch is one month)."""
    keys = _month_keys(batch)
    bounds = pc.min_max(keys)
    if bounds["min"].as_py() == bounds["max"].as_py():
        yield int(bounds["min"].as_py()), batch
        return
    for key in pc.unique(keys).to_pylist():
        yield int(key), batch.filter(pc.equal(keys, key))


def write_sorted(
    location: Location,
    batches: Iterable[pa.RecordBatch],
    name: FileNamer,
    *,
    generation: int = 1,
    max_file_rows: int = DEFAULT_FILE_ROWS,
    on_rows: Callable[[int], None] | None = None,
    written: list[str] | None = None,
) -> list[FileEntry]:
    """Write sorted events as month files; returns their entries in write order.

    `written` (when given) receives each file's relative path as soon as it is opened, so a
    caller can delete the files of a write that failed half way. `on_rows` is told rows written.
    """
    entries: list[FileEntry] = []
    current: _OpenFile | None = None
    current_month = 0
    per_month: dict[int, int] = {}
    try:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            batch = batch.select(EVENT_SCHEMA.names).cast(EVENT_SCHEMA)
            for month, part in _by_month(batch):
                offset = 0
                while offset < part.num_rows:
                    if current is not None and (month != current_month or current.rows >= max_file_rows):
                        entries.append(_close(location, current, generation))
                        current = None
                    if current is None:
                        seq = per_month.get(month, 0)
                        current, current_month = _open(location, month_dir(month), name(month, seq)), month
                        per_month[month] = seq + 1
                        if written is not None:
                            written.append(current.rel)
                    take = min(part.num_rows - offset, max_file_rows - current.rows)
                    _append(current, part.slice(offset, take))
                    offset += take
                    if on_rows is not None:
                        on_rows(take)
        if current is not None:
            entries.append(_close(location, current, generation))
            current = None
    finally:
        if current is not None:
            current.writer.close()
            current.sink.close()
    return entries


def _open(location: Location, directory: str, file_name: str) -> _OpenFile:
    rel = f"{directory}/{file_name}"
    sink = _HashingSink(location.open_output(rel))
    writer = pq.ParquetWriter(
        pa.PythonFile(sink, mode="w"),
        EVENT_SCHEMA,
        compression="zstd",
        use_dictionary=_DICTIONARY,
        bloom_filter_options=_BLOOM,
    )
    return _OpenFile(rel, sink, writer)


def _append(out: _OpenFile, part: pa.RecordBatch) -> None:
    ts = pc.min_max(part.column("timestamp").cast(pa.int64()))
    lo, hi = int(ts["min"].as_py()), int(ts["max"].as_py())
    out.min_us = lo if out.min_us is None else min(out.min_us, lo)
    out.max_us = max(out.max_us, hi)
    out.rows += part.num_rows
    out.fingerprint = add(out.fingerprint, batch_fingerprint(part.column("event_id")))
    out.rollups.append(rollup_of(pa.Table.from_batches([part])))
    out.pending.append(part)
    out.pending_rows += part.num_rows
    if out.pending_rows >= ROW_GROUP_ROWS:
        _flush(out)


def _flush(out: _OpenFile) -> None:
    if out.pending_rows:
        out.writer.write_table(pa.Table.from_batches(out.pending), row_group_size=ROW_GROUP_ROWS)
        out.pending, out.pending_rows = [], 0


def _close(location: Location, out: _OpenFile, generation: int) -> FileEntry:
    _flush(out)
    out.writer.add_key_value_metadata({ROLLUP_KEY: encode(merge(out.rollups))})
    out.writer.close()
    out.sink.close()
    location.make_durable([out.rel])
    return FileEntry(
        path=out.rel,
        generation=generation,
        rows=out.rows,
        bytes=out.sink.size,
        sha256=out.sink.sha256.hexdigest(),
        min_us=out.min_us or 0,
        max_us=out.max_us,
        schema_fingerprint=schema_fingerprint(),
        fingerprint=hex_fp(out.fingerprint),
    )
