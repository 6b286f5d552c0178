"""Exports to a path, `file://`, `s3://` or `abfs://`: the archive's layout, one manifest written last.

Rows come from any store's `query` as keyset pages (storage.keyset, bounded memory at any size)
and are written by storage.archive.writer: `year=YYYY/month=MM/part-N.parquet`, sorted by
(timestamp, event_id), with rows, bytes, sha256, time range, schema fingerprint and id
fingerprint per file in `manifest.json`. The manifest is created last and exclusively (never
over another export's), so a reader never takes half an export for a whole one: a failed export
deletes the files it wrote and leaves no manifest. A destination already holding files is refused.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any, Final

from storage.archive.fingerprint import add, hex_fp, parse_fp
from storage.archive.location import Location
from storage.archive.manifest import schema_fingerprint
from storage.archive.writer import write_sorted
from storage.base import EventFilter
from storage.errors import StoreError
from storage.export import MANIFEST_NAME, schema_description
from storage.keyset import EXPORT_BATCH_BYTES, QueryFn, keyset_tables

__all__ = ["DestinationExistsError", "ExportFailedError", "export_events"]

KIND: Final = "govtrack-export"


class DestinationExistsError(StoreError):
    """The destination holds files already: exports never share one."""


class ExportFailedError(StoreError):
    """The destination could not be written (unreachable, no such bucket, refused): nothing committed."""


def _window(flt: EventFilter) -> dict[str, str | None]:
    return {
        "from": None if flt.start is None else flt.start.isoformat(),
        "to": None if flt.end is None else flt.end.isoformat(),
    }


def export_events(
    query: QueryFn,
    flt: EventFilter,
    location: Location,
    *,
    on_rows: Callable[[int], None] | None = None,
    batch_bytes: int = EXPORT_BATCH_BYTES,
) -> dict[str, Any]:
    """Write the matching events under `location` with `manifest.json`; returns the manifest.

    Raises DestinationExistsError when the destination already holds a file.
    """
    try:
        if location.list_files():
            raise DestinationExistsError(f"{location.url} is not empty: exports never share a destination")
    except OSError as exc:
        raise ExportFailedError(f"{location.url} cannot be listed: {exc}") from exc
    written: list[str] = []
    try:
        pages = keyset_tables(query, flt, "asc", None, batch_bytes=batch_bytes)
        batches = (b for page in pages for b in page.to_batches())
        token = uuid.uuid4().hex[:8]  # two exports racing to one URL never write the same file name
        name = lambda _m, n: f"part-{n}-{token}.parquet"  # noqa: E731
        entries = write_sorted(location, batches, name, on_rows=on_rows, written=written)
        files = sorted((e.to_dict() for e in entries), key=lambda f: f["path"])
        for f in files:
            del f["generation"]
        manifest: dict[str, Any] = {
            "kind": KIND,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            **_window(flt),
            "rows": sum(e.rows for e in entries),
            "fingerprint": hex_fp(add(*(parse_fp(e.fingerprint) for e in entries))),
            "files": files,
            "schema": schema_description(),
            "schema_fingerprint": schema_fingerprint(),
        }
        body = json.dumps(manifest, indent=2, sort_keys=True).encode()
        if not location.create_exclusive(MANIFEST_NAME, body):
            raise DestinationExistsError(f"{location.url}: another export committed here meanwhile")
    except BaseException as exc:
        for rel in written:
            with contextlib.suppress(OSError):
                location.delete(rel)
        if isinstance(exc, OSError):
            raise ExportFailedError(f"the export to {location.url} failed: {exc}") from exc
        raise
    return manifest
