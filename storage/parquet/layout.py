"""The Parquet store's file set: immutable data files plus one manifest naming the live ones.

Crash safety rests on one rule: a data file becomes visible only when a manifest that lists it has
been committed, and a manifest is committed by write-temp + fsync + `os.replace` + directory fsync.
A crash therefore leaves either the old or the new manifest; files it does not list (half-written
temps, an uncommitted append, a compaction's inputs after its commit) are orphans, deleted at open.

Every data file carries its rollup in its footer (storage.parquet.rollup). Data files are written
under their final unique names (invisible until listed, orphans if never committed), so an append
costs one fsync per file, one per month directory touched, and the manifest's two.

Readers take a snapshot (the list of live files) and hold it while DuckDB scans; files replaced by
compaction are retired and deleted only once no snapshot is open, so a scan never loses a file.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.export import fsync_path
from storage.parquet.rollup import ROLLUP_KEY, RollupCache, encode, rollup_of
from storage.schema import EVENT_SCHEMA

__all__ = [
    "CELL_KEY",
    "FILE_SCHEMA",
    "MANIFEST_FILE",
    "DataFile",
    "FileSet",
    "Manifest",
    "by_month",
    "partition_of",
    "write_events",
]

MANIFEST_FILE = "_manifest.json"
FORMAT = 2
ROW_GROUP_ROWS = 32_768
#: Hidden column: a 64-bit hash of (workbook, sheet, cell), so cell history can use a bloom filter.
#: Never returned by a read (queries list EVENT_SCHEMA's columns); see parquet_queries.cell_key.
CELL_KEY = "_cell_key"
FILE_SCHEMA = EVENT_SCHEMA.append(pa.field(CELL_KEY, pa.uint64()))
BLOOM_COLUMNS = ("event_id", CELL_KEY)
#: Columns whose values never repeat (ids, leaf indexes and hashes, timestamps, the cell key):
#: trying a dictionary for them only costs write time. The leaf columns alone cost ~40 % of a
#: file's write time when dictionary-encoded (8000 rows: 1.70 -> 1.02 ms per 1000 rows, measured).
UNIQUE_COLUMNS = ("event_id", "timestamp", "received_at", CELL_KEY, "leaf_index", "leaf_hash")
DICTIONARY_COLUMNS = [f.name for f in FILE_SCHEMA if f.name not in UNIQUE_COLUMNS]
#: Min/max of a random hash prunes nothing; every other column's statistics serve some filter.
STATISTICS_COLUMNS = [f.name for f in FILE_SCHEMA if f.name != "leaf_hash"]
EVENTS_DIR = "events"


def partition_of(month_key: int) -> str:
    """`events/year=YYYY/month=MM` for a year*100+month key."""
    return f"{EVENTS_DIR}/year={month_key // 100:04d}/month={month_key % 100:02d}"


def bloom_filter_options(rows_hint: int) -> dict[str, dict[str, float]]:
    """Bloom filters sized for one row group of a file of `rows_hint` rows.

    A filter belongs to one row group's column chunk, and the writer holds every row group's
    filters until the footer: sized for the whole file, they grew with the month being merged
    (a sustained run's merge of a 6.5 M-row month peaked at 4.2 GB RSS, 924 MB once sized per row
    group; writing 262 k and 1 M rows grew a process's peak by 37 and 174 MB, now by 31 and 33 MB).
    """
    ndv = max(1024, min(rows_hint, ROW_GROUP_ROWS))
    return {c: {"ndv": ndv, "fpp": 0.01} for c in BLOOM_COLUMNS}


def write_events(batches: Iterable[pa.RecordBatch], path: Path, rows_hint: int, rollup: pa.Table) -> int:
    """Write event batches (FILE_SCHEMA) and their rollup as one Parquet file; returns the rows.

    Row groups of ROW_GROUP_ROWS keep min/max pruning fine-grained (about a day at 10 M events a
    year); bloom filters on event_id and the cell key let DuckDB skip row groups for `get_event`,
    dedup confirmation and `cell_history`, which no sort order can serve.
    """
    blooms = bloom_filter_options(rows_hint)
    rows = 0
    with pq.ParquetWriter(
        path,
        FILE_SCHEMA,
        compression="zstd",
        use_dictionary=DICTIONARY_COLUMNS,
        write_statistics=STATISTICS_COLUMNS,
        bloom_filter_options=blooms,
    ) as writer:
        for batch in batches:
            writer.write_batch(batch.cast(FILE_SCHEMA), row_group_size=ROW_GROUP_ROWS)
            rows += batch.num_rows
        writer.add_key_value_metadata({ROLLUP_KEY: encode(rollup)})
    return rows


@dataclass(frozen=True, slots=True)
class DataFile:
    """One live Parquet file: path relative to the root, row count and timestamp range (µs)."""

    path: str
    rows: int
    min_us: int
    max_us: int

    @property
    def partition(self) -> str:
        """The `events/year=/month=` directory this file lives in."""
        return self.path.rsplit("/", 1)[0]

    def overlaps(self, start_us: int | None, end_us: int | None) -> bool:
        """Whether any row could fall in [start_us, end_us)."""
        return (start_us is None or self.max_us >= start_us) and (end_us is None or self.min_us < end_us)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A committed generation of the file set."""

    generation: int
    files: tuple[DataFile, ...]
    #: The cell-key function's value on a fixed input when the files' keys were computed.
    cell_key_probe: int | None = None
    #: Leaves of the transparency log committed so far (the next leaf index), committed with the
    #: files that hold them; never decreases (a month dropped for the archive keeps its leaves).
    leaves: int = 0

    def to_json(self) -> str:
        """Serialised form written to `_manifest.json`."""
        files = [{"path": f.path, "rows": f.rows, "min_us": f.min_us, "max_us": f.max_us} for f in self.files]
        data = {"format": FORMAT, "generation": self.generation, "cell_key_probe": self.cell_key_probe}
        return json.dumps({**data, "leaves": self.leaves, "files": files}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        """Parse what `to_json` wrote."""
        data = json.loads(text)
        if data.get("format", 1) != FORMAT and data["files"]:
            raise ValueError(f"parquet store format {data.get('format', 1)} is not {FORMAT}: re-import it")
        files = tuple(DataFile(f["path"], f["rows"], f["min_us"], f["max_us"]) for f in data["files"])
        return cls(int(data["generation"]), files, data.get("cell_key_probe"), int(data.get("leaves", 0)))


class FileSet:
    """The live files of one store root: durable writes, atomic commits, safe deletion."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.rollups = RollupCache(root)
        self._lock = threading.Lock()
        self._manifest = Manifest(0, ())
        self._readers = 0
        self._retired: list[DataFile] = []

    @property
    def manifest(self) -> Manifest:
        """The currently committed manifest."""
        with self._lock:
            return self._manifest

    def load(self) -> Manifest:
        """Load the committed manifest (empty if none) and delete every file it does not list."""
        path = self.root / MANIFEST_FILE
        manifest = Manifest.from_json(path.read_text("utf-8")) if path.exists() else Manifest(0, ())
        with self._lock:
            self._manifest = manifest
        self._remove_orphans(manifest)
        return manifest

    def _remove_orphans(self, manifest: Manifest) -> None:
        live = {f.path for f in manifest.files}
        for tmp in self.root.glob(MANIFEST_FILE + ".tmp*"):
            tmp.unlink(missing_ok=True)
        events = self.root / EVENTS_DIR
        if not events.exists():
            return
        for path in events.rglob("*"):
            if path.is_file() and path.relative_to(self.root).as_posix() not in live:
                path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[tuple[DataFile, ...]]:
        """The live files, guaranteed to exist until the `with` block ends."""
        with self._lock:
            self._readers += 1
            files = self._manifest.files
        try:
            yield files
        finally:
            with self._lock:
                self._readers -= 1
            self._delete_retired()

    def adopt_cell_key(self, probe: int) -> bool:
        """Whether the files' cell keys were made by the function giving `probe` (recorded if new)."""
        with self._lock:
            current = self._manifest
            if not current.files:
                self._manifest = Manifest(current.generation, current.files, probe, current.leaves)
                return True
            return current.cell_key_probe == probe

    def new_path(self, month_key: int) -> Path:
        """A fresh, unique data file path in a month's directory; invisible until committed."""
        directory = self.root / partition_of(month_key)
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{uuid.uuid4().hex}.parquet"

    def write(self, table: pa.Table, month_key: int) -> DataFile:
        """Write rows (FILE_SCHEMA) of one month with their rollup; not durable nor visible yet."""
        path = self.new_path(month_key)
        try:
            rollup = rollup_of(table)
            write_events(table.to_batches(), path, table.num_rows, rollup)
            bounds = pc.min_max(table.column("timestamp").cast(pa.int64()))
            return self.finish(path, table.num_rows, bounds["min"].as_py(), bounds["max"].as_py(), rollup)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def finish(self, path: Path, rows: int, min_us: int, max_us: int, rollup: pa.Table) -> DataFile:
        """Describe a written data file and remember the rollup written into it."""
        data = DataFile(path.relative_to(self.root).as_posix(), rows, min_us, max_us)
        self.rollups.put(data.path, rollup)
        return data

    def make_durable(self, files: Iterable[DataFile]) -> None:
        """Fsync data files, then their directories (their names are new entries there)."""
        paths = [self.root / f.path for f in files]
        for path in paths:
            fsync_path(path)
        for directory in {p.parent for p in paths}:
            fsync_path(directory)

    def commit(
        self, add: Iterable[DataFile], remove: Iterable[DataFile] = (), *, leaves: int = 0
    ) -> Manifest:
        """Atomically publish a new generation: current files - `remove` + `add`.

        `add` must be durable already (`make_durable`). Callers serialise commits (the store's
        write lock); this lock only guards the swap against concurrent snapshots. `leaves` is the
        log's leaf count after this commit (the larger of it and the current one is kept).
        """
        gone = set(remove)
        with self._lock:
            current = self._manifest
        kept = tuple(f for f in current.files if f not in gone)
        manifest = Manifest(
            current.generation + 1, kept + tuple(add), current.cell_key_probe, max(current.leaves, leaves)
        )
        self._write_manifest(manifest)
        with self._lock:
            self._manifest = manifest
            self._retired.extend(gone)
        self._delete_retired()
        return manifest

    def _write_manifest(self, manifest: Manifest) -> None:
        path = self.root / MANIFEST_FILE
        tmp = path.with_name(f"{MANIFEST_FILE}.tmp-{manifest.generation}")
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write(manifest.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_path(self.root)

    def discard(self, files: Iterable[DataFile]) -> None:
        """Delete files that were written but never committed, or retired."""
        for f in files:
            (self.root / f.path).unlink(missing_ok=True)

    def _delete_retired(self) -> None:
        with self._lock:
            if self._readers or not self._retired:
                return
            retired, self._retired = self._retired, []
            live = [f.path for f in self._manifest.files]
        self.discard(retired)
        self.rollups.keep_only(live)


def by_month(table: pa.Table) -> Iterator[tuple[int, pa.Table]]:
    """(year*100+month, rows of that UTC month) for each month in `table`; no copy for one month."""
    us = table.column("timestamp").cast(pa.int64()).to_numpy()
    months = us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)
    present = np.unique(months)
    for m in present.tolist():
        key = (1970 + m // 12) * 100 + m % 12 + 1
        yield key, table if present.size == 1 else table.filter(pa.array(months == m))
