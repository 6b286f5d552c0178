"""The per-month manifest: the commit record of an archived month, written last.

A month `year=YYYY/month=MM/` of the archive holds data files and one manifest per generation,
`_manifest-gNNNNNN.json`. Generation 1 is the first move of the month; late events for an archived
month are accepted into the hot store and moved again later as generation 2, 3, ... Each manifest
is cumulative (it lists every file of every generation so far), so the month is exactly what its
newest manifest lists: files no manifest lists (a crashed or losing move) are never read, and are
deleted by the next move or reported by verify. A retention deletion commits a manifest with
`deleted: true` and no files.

Each file entry records rows, bytes, sha256, time range, schema fingerprint and the fingerprint of
its event ids (storage.archive.fingerprint); the month's fingerprint is their sum. `digest` is the
sha256 of the manifest's own canonical JSON without it, so any edit to a manifest is detected.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa

from storage.archive.fingerprint import add, hex_fp, parse_fp
from storage.export import schema_description
from storage.schema import EVENT_SCHEMA

__all__ = [
    "FORMAT",
    "FileEntry",
    "ManifestError",
    "MonthManifest",
    "manifest_generation",
    "manifest_name",
    "month_bounds_us",
    "month_dir",
    "month_of_dir",
    "month_text",
    "parse_month",
    "schema_fingerprint",
]

FORMAT: Final = 1
KIND: Final = "govtrack-archive-month"
_MANIFEST: Final = re.compile(r"^_manifest-g(\d{6})\.json$")
_MONTH_DIR: Final = re.compile(r"^year=(\d{4})/month=(\d{2})$")
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class ManifestError(ValueError):
    """A manifest that cannot be trusted: unreadable, malformed or edited."""


def schema_fingerprint(schema: pa.Schema = EVENT_SCHEMA) -> str:
    """16 hex digits naming a schema's columns, types and nullability."""
    text = json.dumps(schema_description(schema), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def month_dir(month: int) -> str:
    """`year=YYYY/month=MM` of a YYYYMM key."""
    return f"year={month // 100:04d}/month={month % 100:02d}"


def month_of_dir(rel: str) -> int | None:
    """The YYYYMM key of a `year=YYYY/month=MM` directory, None for anything else."""
    m = _MONTH_DIR.match(rel)
    return int(m.group(1)) * 100 + int(m.group(2)) if m else None


def month_text(month: int) -> str:
    """`YYYY-MM` of a YYYYMM key."""
    return f"{month // 100:04d}-{month % 100:02d}"


def parse_month(text: str) -> int:
    """The YYYYMM key of `YYYY-MM`; ValueError otherwise."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m.group(2)) <= 12:
        raise ValueError(f"not a month (YYYY-MM): {text!r}")
    return int(m.group(1)) * 100 + int(m.group(2))


def month_bounds_us(month: int) -> tuple[int, int]:
    """[start, end) of a UTC month in epoch microseconds."""
    year, mon = divmod(month, 100)
    start = dt.datetime(year, mon, 1, tzinfo=dt.UTC)
    end = dt.datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=dt.UTC)
    return (start - _EPOCH) // dt.timedelta(microseconds=1), (end - _EPOCH) // dt.timedelta(microseconds=1)


def manifest_name(generation: int) -> str:
    """The file name of a generation's manifest."""
    return f"_manifest-g{generation:06d}.json"


def manifest_generation(name: str) -> int | None:
    """The generation of a manifest file name, None for any other name."""
    m = _MANIFEST.match(name)
    return int(m.group(1)) if m else None


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One data file as committed: everything verify checks it against."""

    path: str
    generation: int
    rows: int
    bytes: int
    sha256: str
    min_us: int
    max_us: int
    schema_fingerprint: str
    fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form (timestamps also as ISO text, for people)."""
        return {
            "path": self.path,
            "generation": self.generation,
            "rows": self.rows,
            "bytes": self.bytes,
            "sha256": self.sha256,
            "min_us": self.min_us,
            "max_us": self.max_us,
            "min_timestamp": _iso(self.min_us),
            "max_timestamp": _iso(self.max_us),
            "schema_fingerprint": self.schema_fingerprint,
            "fingerprint": self.fingerprint,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FileEntry:
        """Inverse of `to_dict`."""
        return cls(
            str(d["path"]),
            int(d["generation"]),
            int(d["rows"]),
            int(d["bytes"]),
            str(d["sha256"]),
            int(d["min_us"]),
            int(d["max_us"]),
            str(d["schema_fingerprint"]),
            str(d["fingerprint"]),
        )


@dataclass(frozen=True, slots=True)
class MonthManifest:
    """A committed generation of one archived month."""

    month: int
    generation: int
    files: tuple[FileEntry, ...]
    created_at: str
    source: str
    deleted: bool = False

    @property
    def rows(self) -> int:
        """Rows of the month across its generations."""
        return sum(f.rows for f in self.files)

    @property
    def fingerprint(self) -> int:
        """The month's fingerprint: the sum of its files'."""
        return add(*(parse_fp(f.fingerprint) for f in self.files))

    @property
    def relpath(self) -> str:
        """Where this manifest lives, relative to the archive root."""
        return f"{month_dir(self.month)}/{manifest_name(self.generation)}"

    def body(self) -> dict[str, Any]:
        """Everything but the digest."""
        return {
            "format": FORMAT,
            "kind": KIND,
            "month": month_text(self.month),
            "generation": self.generation,
            "created_at": self.created_at,
            "source": self.source,
            "deleted": self.deleted,
            "rows": self.rows,
            "fingerprint": hex_fp(self.fingerprint),
            "schema": schema_description(),
            "schema_fingerprint": schema_fingerprint(),
            "files": [f.to_dict() for f in self.files],
        }

    def to_json(self) -> bytes:
        """The committed bytes: the body plus its digest."""
        body = self.body()
        return json.dumps({**body, "digest": _digest(body)}, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> MonthManifest:
        """Parse and check a manifest; ManifestError when malformed or edited."""
        try:
            raw = json.loads(data)
            body = {k: v for k, v in raw.items() if k != "digest"}
            if raw.get("digest") != _digest(body):
                raise ManifestError("its digest does not match its content (the manifest was edited)")
            if raw.get("kind") != KIND or raw.get("format") != FORMAT:
                raise ManifestError(f"not a format-{FORMAT} month manifest")
            files = tuple(FileEntry.from_dict(f) for f in raw["files"])
            manifest = cls(
                parse_month(raw["month"]),
                int(raw["generation"]),
                files,
                str(raw["created_at"]),
                str(raw["source"]),
                bool(raw["deleted"]),
            )
        except ManifestError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise ManifestError(f"malformed manifest: {exc}") from exc
        if manifest.rows != raw["rows"] or hex_fp(manifest.fingerprint) != raw["fingerprint"]:
            raise ManifestError("its totals disagree with its files")
        return manifest


def _digest(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _iso(us: int) -> str:
    return (_EPOCH + dt.timedelta(microseconds=us)).isoformat().replace("+00:00", "Z")
