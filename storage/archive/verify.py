"""`govtrack archive verify`: every archived month checked against its manifest, byte for byte.

For each month directory: its newest manifest must parse and match its own digest (an edited
manifest fails here); every file it lists must exist with the listed size and sha256 (a flipped
byte fails here), the listed row count in its footer, the event schema, and the listed fingerprint
of its ids (DuckDB over the file, wherever it lives); no other file may sit in the directory (an
orphan of a crashed move, or anything put there by hand); older manifests must parse and list
only files the newest one lists (or be superseded by a deletion). The verdict is good only when
no problem was found and at least one file was checked: an empty or unreadable archive is not
"verified".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from storage.archive import queries as archive_sql
from storage.archive.fingerprint import MASK, hex_fp
from storage.archive.location import Location
from storage.archive.manifest import (
    FileEntry,
    ManifestError,
    MonthManifest,
    manifest_generation,
    manifest_name,
    month_dir,
    month_of_dir,
    month_text,
    schema_fingerprint,
)

__all__ = ["VerifyReport", "verify_archive"]


@dataclass(slots=True)
class VerifyReport:
    """What verify found: good only with no problem and at least one file checked."""

    months: int = 0
    files_checked: int = 0
    rows: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """The verdict."""
        return not self.problems and self.files_checked > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {
            "ok": self.ok,
            "months": self.months,
            "files_checked": self.files_checked,
            "rows": self.rows,
            "problems": self.problems,
        }


def verify_archive(location: Location, month: int | None = None) -> VerifyReport:
    """Check the whole archive at `location`, or one month of it (see the module docstring)."""
    report = VerifyReport()
    listing: dict[int, list[str]] = {}
    try:
        for rel in location.list_files():
            directory, _, name = rel.rpartition("/")
            key = month_of_dir(directory)
            if key is not None and (month is None or key == month):
                listing.setdefault(key, []).append(name)
    except OSError as exc:
        report.problems.append(f"the archive at {location.url} cannot be listed: {exc}")
        return report
    if month is not None and month not in listing:
        report.problems.append(f"{month_dir(month)}: no such archived month")
    con = duckdb.connect(":memory:")
    if not location.is_local:
        con.register_filesystem(location.duckdb_filesystem())
    try:
        for key, names in sorted(listing.items()):
            report.months += 1
            _verify_month(location, con, key, names, report)
    finally:
        con.close()
    return report


def _verify_month(
    location: Location, con: duckdb.DuckDBPyConnection, month: int, names: list[str], report: VerifyReport
) -> None:
    where = month_dir(month)
    gens = sorted(g for g in (manifest_generation(n) for n in names) if g is not None)
    if not gens:
        report.problems.append(f"{where}: {len(names)} file(s) but no manifest (never committed)")
        return
    try:
        newest = MonthManifest.from_json(location.read_bytes(f"{where}/{manifest_name(gens[-1])}"))
    except (ManifestError, OSError) as exc:
        report.problems.append(f"{where}/{manifest_name(gens[-1])}: {exc}")
        return
    if newest.month != month or newest.generation != gens[-1]:
        report.problems.append(
            f"{where}/{manifest_name(gens[-1])}: names {month_text(newest.month)} g{newest.generation}"
        )
    listed = {f.path for f in newest.files}
    for gen in gens[:-1]:
        _check_older(location, where, gen, listed, newest.deleted, report)
    for entry in newest.files:
        _check_file(location, con, entry, report)
    for name in names:
        if manifest_generation(name) is None and f"{where}/{name}" not in listed:
            report.problems.append(f"{where}/{name}: extra file that no manifest lists")


def _check_older(
    location: Location, where: str, gen: int, listed: set[str], deleted: bool, report: VerifyReport
) -> None:
    rel = f"{where}/{manifest_name(gen)}"
    try:
        older = MonthManifest.from_json(location.read_bytes(rel))
    except (ManifestError, OSError) as exc:
        report.problems.append(f"{rel}: {exc}")
        return
    lost = [f.path for f in older.files if f.path not in listed]
    if lost and not deleted and not older.deleted:
        report.problems.append(f"{rel}: lists {lost[0]}, which the newest manifest dropped")


def _canonical(schema: pa.Schema) -> pa.Schema:
    """A schema read back from Parquet, with map types renamed as Arrow builds them (entries names differ)."""
    fields = []
    for f in schema.remove_metadata():
        kind = f.type
        if isinstance(kind, pa.MapType):
            kind = pa.map_(kind.key_type, kind.item_type)
        fields.append(pa.field(f.name, kind, nullable=f.nullable))
    return pa.schema(fields)


def _check_file(
    location: Location, con: duckdb.DuckDBPyConnection, entry: FileEntry, report: VerifyReport
) -> None:
    size = location.size(entry.path)
    if size is None:
        report.problems.append(f"{entry.path}: missing file")
        return
    report.files_checked += 1
    sha, size = location.sha256(entry.path)
    if (sha, size) != (entry.sha256, entry.bytes):
        report.problems.append(f"{entry.path}: sha256 or size differs from the manifest (the file changed)")
        return
    try:
        meta = pq.read_metadata(location.full(entry.path), filesystem=location.fs)
        fields = meta.schema.to_arrow_schema()
    except (OSError, ValueError) as exc:
        report.problems.append(f"{entry.path}: not a readable Parquet file: {exc}")
        return
    if meta.num_rows != entry.rows:
        report.problems.append(f"{entry.path}: {meta.num_rows} rows, the manifest says {entry.rows}")
        return
    if schema_fingerprint(_canonical(fields)) != entry.schema_fingerprint:
        report.problems.append(f"{entry.path}: schema differs from the manifest's")
        return
    q = archive_sql.fingerprint([location.duckdb_path(entry.path)])
    row = con.sql(q.sql, params=q.params).fetchall()[0]
    if int(row[0]) != entry.rows or hex_fp(int(row[1]) & MASK) != entry.fingerprint:
        report.problems.append(f"{entry.path}: its event ids differ from the manifest's fingerprint")
        return
    report.rows += entry.rows
