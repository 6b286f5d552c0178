"""Legal holds: time ranges (optionally one user or one workbook) that nothing may delete.

A hold is a record in the archive location, `_holds/<hold_id>.json`, created exclusively and never
rewritten; releasing it adds `_holds/<hold_id>.released.json`. Records live beside the data they
protect, so every process that could delete (retention here, another API replica, an operator's
`govtrack archive`) sees the same holds, and they survive restarts.

Retention asks `blocks(month)` before deleting an archived month: a hold blocks the month when its
range overlaps the month and, for a user or workbook hold, when the month holds such an event
(asked of the archive itself). The hot tier never deletes: a hot month is dropped only once its
archive copy is committed, and that copy is what the hold then protects.

Where the archive is an S3 bucket with Object Lock, every archived file whose time range overlaps
an active hold also carries an S3 legal hold (set when the hold is placed and when files are moved
in under it, cleared when no active hold overlaps the file any more), so not even a direct delete
of an object version succeeds while it is held.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from storage.archive.location import Location
from storage.archive.manifest import FileEntry, month_bounds_us
from storage.base import EventFilter, Page
from storage.errors import StoreError

if TYPE_CHECKING:
    from storage.archive.reader import ArchiveReader

__all__ = ["Hold", "HoldBook", "HoldNotFoundError"]

PREFIX: Final = "_holds"
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class HoldNotFoundError(StoreError):
    """No active hold has that id."""


def _us(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Hold:
    """One legal hold: [start, end), optionally of one user or one workbook."""

    hold_id: str
    start: dt.datetime
    end: dt.datetime
    user_name: str | None
    workbook_name: str | None
    reason: str
    created_at: str
    released_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the record and the API's answer)."""
        return {
            "hold_id": self.hold_id,
            "from": self.start.isoformat().replace("+00:00", "Z"),
            "to": self.end.isoformat().replace("+00:00", "Z"),
            "user_name": self.user_name,
            "workbook_name": self.workbook_name,
            "reason": self.reason,
            "created_at": self.created_at,
            "released_at": self.released_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Hold:
        """Inverse of `to_dict`."""
        return cls(
            str(d["hold_id"]),
            dt.datetime.fromisoformat(d["from"]),
            dt.datetime.fromisoformat(d["to"]),
            d.get("user_name"),
            d.get("workbook_name"),
            str(d.get("reason", "")),
            str(d["created_at"]),
            d.get("released_at"),
        )

    def overlaps(self, min_us: int, max_us: int) -> bool:
        """Whether [min_us, max_us] (inclusive) meets the hold's range."""
        return _us(self.start) <= max_us and min_us < _us(self.end)

    def event_filter(self, start_us: int, end_us: int) -> EventFilter:
        """The events the hold covers within [start_us, end_us)."""
        lo = max(_us(self.start), start_us)
        hi = min(_us(self.end), end_us)
        return EventFilter(
            start=_EPOCH + dt.timedelta(microseconds=lo),
            end=_EPOCH + dt.timedelta(microseconds=hi),
            user_names=(self.user_name,) if self.user_name else (),
            workbook_names=(self.workbook_name,) if self.workbook_name else (),
        )


class HoldBook:
    """The holds of one archive location."""

    def __init__(self, location: Location) -> None:
        self.location = location
        self._object_lock: bool | None = None
        self._lock = threading.Lock()

    def create(
        self,
        start: dt.datetime,
        end: dt.datetime,
        user_name: str | None,
        workbook_name: str | None,
        reason: str,
    ) -> Hold:
        """Record a new hold (durably, before returning)."""
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        hold = Hold(uuid.uuid4().hex, start, end, user_name, workbook_name, reason, now)
        data = json.dumps(hold.to_dict(), indent=1, sort_keys=True).encode()
        if not self.location.create_exclusive(f"{PREFIX}/{hold.hold_id}.json", data):
            raise StoreError("hold id collision")  # 122 random bits: not expected
        return hold

    def all(self) -> list[Hold]:
        """Every hold ever placed, released ones with `released_at`, oldest first."""
        names = {rel.rpartition("/")[2] for rel in self.location.list_files(PREFIX)}
        holds = []
        for name in sorted(names):
            if name.endswith(".json") and not name.endswith(".released.json"):
                hold = Hold.from_dict(json.loads(self.location.read_bytes(f"{PREFIX}/{name}")))
                released = f"{hold.hold_id}.released.json"
                if released in names:
                    when = json.loads(self.location.read_bytes(f"{PREFIX}/{released}"))["released_at"]
                    hold = Hold(**{**_fields(hold), "released_at": when})
                holds.append(hold)
        return sorted(holds, key=lambda h: (h.created_at, h.hold_id))

    def active(self) -> list[Hold]:
        """The holds in force."""
        return [h for h in self.all() if h.released_at is None]

    def release(self, hold_id: str) -> Hold:
        """End a hold; HoldNotFoundError when no active hold has that id."""
        hold = next((h for h in self.active() if h.hold_id == hold_id), None)
        if hold is None:
            raise HoldNotFoundError(f"no active hold {hold_id!r}")
        now = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        data = json.dumps({"hold_id": hold_id, "released_at": now}).encode()
        self.location.create_exclusive(f"{PREFIX}/{hold_id}.released.json", data)
        return Hold(**{**_fields(hold), "released_at": now})

    def blocks(self, month: int, reader: ArchiveReader) -> list[Hold]:
        """The active holds covering some archived event of `month` (retention must keep it)."""
        start, end = month_bounds_us(month)
        manifest = reader.months().get(month)
        if manifest is None:
            return []
        found = []
        for hold in self.active():
            if not any(hold.overlaps(max(f.min_us, start), min(f.max_us, end - 1)) for f in manifest.files):
                continue
            whole = hold.user_name is None and hold.workbook_name is None
            if whole or reader.query(hold.event_filter(start, end), Page(limit=1, order="asc")).num_rows:
                found.append(hold)
        return found

    # -- S3 Object Lock ---------------------------------------------------------------------------

    def object_lock(self) -> bool:
        """Whether the location is an S3 bucket with Object Lock enabled (asked once)."""
        if self.location.kind != "s3":
            return False
        with self._lock:
            if self._object_lock is None:
                bucket = self.location.base.split("/", 1)[0]
                try:
                    config = self.location.s3_client().get_object_lock_configuration(Bucket=bucket)
                    enabled = config.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
                except Exception:  # no Object Lock configuration on the bucket (or no right to ask)
                    enabled = False
                self._object_lock = enabled
            return self._object_lock

    def sync_legal_holds(self, files: Iterable[FileEntry], holds: list[Hold] | None = None) -> int:
        """Set each file's S3 legal hold ON when an active hold overlaps it, else OFF; returns ONs."""
        if not self.object_lock():
            return 0
        active = self.active() if holds is None else holds
        client = self.location.s3_client()
        on = 0
        for f in files:
            held = any(h.overlaps(f.min_us, f.max_us) for h in active)
            bucket, key = self.location.full(f.path).split("/", 1)
            client.put_object_legal_hold(
                Bucket=bucket, Key=key, LegalHold={"Status": "ON" if held else "OFF"}
            )
            on += held
        return on


def _fields(hold: Hold) -> dict[str, Any]:
    return {name: getattr(hold, name) for name in Hold.__slots__}
