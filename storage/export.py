"""Write Arrow data as a `year=YYYY/month=MM/` Parquet tree plus a verifiable `manifest.json`.

Shared by every engine's `export()` (and the archive tier), so an export looks the same whichever
store produced it. Input is streamed batch by batch: one open Parquet writer per month, so memory
stays at one batch plus the writers' buffers, never the whole export.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from storage.schema import EVENT_SCHEMA

__all__ = [
    "MANIFEST_NAME",
    "file_sha256",
    "fsync_path",
    "schema_description",
    "split_by_month",
    "write_partitioned",
]

MANIFEST_NAME = "manifest.json"
_CHUNK = 1 << 20


@dataclass(slots=True)
class _MonthFile:
    """One open output file of the export and the rows written into it so far."""

    relpath: str
    writer: pq.ParquetWriter
    rows: int = 0


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def schema_description(schema: pa.Schema = EVENT_SCHEMA) -> list[dict[str, object]]:
    """The manifest's `schema` entry: name, Arrow type text and nullability of every column."""
    return [{"name": f.name, "type": str(f.type), "nullable": f.nullable} for f in schema]


def _batches(source: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    if isinstance(source, pa.Table):
        yield from source.to_batches()
    else:
        yield from source


def _month_keys(batch: pa.RecordBatch) -> pa.Array:
    """year*100+month of each row's UTC timestamp, as int64."""
    ts = batch.column("timestamp")
    return pc.add(pc.multiply(pc.year(ts), 100), pc.month(ts)).cast(pa.int64())


def split_by_month(batch: pa.RecordBatch) -> Iterator[tuple[int, pa.RecordBatch]]:
    """(year*100+month, rows of that UTC month) for every month present in `batch`."""
    keys = _month_keys(batch)
    for key in pc.unique(keys).to_pylist():
        yield int(key), batch.filter(pc.equal(keys, key))


def write_partitioned(
    source: pa.Table | pa.RecordBatchReader | Iterable[pa.RecordBatch],
    destination: Path,
    *,
    schema: pa.Schema = EVENT_SCHEMA,
    compression: str = "zstd",
) -> dict[str, object]:
    """Write `source` under `destination` as `year=YYYY/month=MM/part-0.parquet` files.

    Rows are cast to `schema` (which must have a UTC `timestamp` column) and keep their input
    order within each month. Files are fsync'd; `manifest.json` is written last (temp + rename),
    so a manifest only ever describes complete files.

    Args:
        source: an Arrow table, a RecordBatchReader or any iterable of record batches.
        destination: a local directory; created if missing. Existing files of the same name
            are replaced.
        schema: the schema every file is written in.
        compression: Parquet codec.

    Returns:
        The manifest: `{"rows": n, "files": [{"path", "rows", "sha256"}], "schema": [...]}`,
        paths relative to `destination` with `/` separators, sorted by path.
    """
    destination.mkdir(parents=True, exist_ok=True)
    open_files: dict[int, _MonthFile] = {}
    try:
        for batch in _batches(source):
            if batch.num_rows == 0:
                continue
            batch = batch.cast(schema)
            for key, part in split_by_month(batch):
                out = open_files.get(key) or _open_month(destination, key, schema, compression)
                open_files[key] = out
                out.writer.write_batch(part)
                out.rows += part.num_rows
    finally:
        for out in open_files.values():
            out.writer.close()
    files = [_describe(destination, out) for out in sorted(open_files.values(), key=lambda o: o.relpath)]
    manifest: dict[str, object] = {
        "rows": sum(out.rows for out in open_files.values()),
        "files": files,
        "schema": schema_description(schema),
    }
    _write_json_atomically(destination / MANIFEST_NAME, manifest)
    return manifest


def _open_month(destination: Path, key: int, schema: pa.Schema, compression: str) -> _MonthFile:
    relpath = f"year={key // 100:04d}/month={key % 100:02d}/part-0.parquet"
    path = destination / relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    return _MonthFile(relpath, pq.ParquetWriter(path, schema, compression=compression))


def _describe(destination: Path, out: _MonthFile) -> dict[str, object]:
    path = destination / out.relpath
    fsync_path(path)
    return {"path": out.relpath, "rows": out.rows, "sha256": file_sha256(path)}


def fsync_path(path: Path) -> None:
    """Fsync a file or a directory (a directory fsync makes a rename in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_json_atomically(path: Path, data: dict[str, object]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_path(path.parent)
