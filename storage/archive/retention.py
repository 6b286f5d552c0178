"""Retention: delete archived months older than the retention period, and record what went.

Off unless configured. A month goes only when all of it is past the period (its end is older than
now - retention) and no legal hold covers any of its events (storage.archive.holds). For each
month, in this order, so a crash at any point leaves a consistent archive and a true record:
1. a deletion record `_deletions/<UTC stamp>-<YYYY-MM>-g<N>.json` is created (files, sha256, rows,
   bytes, the month's fingerprint, why), durable before anything is deleted;
2. a manifest with `deleted: true` and no files is committed as the month's next generation:
   from this instant no read serves the month;
3. the data files are deleted (a crash before this leaves unlisted files, removed by a re-run).
The records are never rewritten or deleted by govtrack: the log survives the data it describes.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from storage.archive.fingerprint import hex_fp
from storage.archive.manifest import (
    MonthManifest,
    manifest_generation,
    month_bounds_us,
    month_dir,
    month_text,
)
from storage.archive.mover import ArchiveBusyError, run_lock

if TYPE_CHECKING:
    from storage.archive.tiers import TieredStore

__all__ = ["DELETIONS", "RetentionReport", "apply_retention", "deletion_log"]

DELETIONS: Final = "_deletions"
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True, slots=True)
class RetentionReport:
    """One retention pass: months deleted (with their records) and months kept by holds."""

    deleted: list[dict[str, Any]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"deleted": self.deleted, "held": self.held}


def apply_retention(
    tiered: TieredStore, retention_days: int, *, now: dt.datetime | None = None
) -> RetentionReport:
    """Delete archived months wholly older than `retention_days` and not held (module docstring)."""
    lock = run_lock(tiered.location.url)
    if not lock.acquire(blocking=False):
        raise ArchiveBusyError("an archive or retention run is in progress: try again when it ends")
    try:
        now = now or dt.datetime.now(dt.UTC)
        cutoff_us = (now - dt.timedelta(days=retention_days) - _EPOCH) // dt.timedelta(microseconds=1)
        report = RetentionReport()
        for month, manifest in sorted(tiered.reader.months().items()):
            if month_bounds_us(month)[1] > cutoff_us:
                continue
            holds = tiered.holds.blocks(month, tiered.reader)
            if holds:
                report.held.append({"month": month_text(month), "holds": [h.hold_id for h in holds]})
                continue
            report.deleted.append(_delete_month(tiered, manifest, retention_days, now))
        _remove_leftovers(tiered)
        return report
    finally:
        lock.release()


def _delete_month(
    tiered: TieredStore, manifest: MonthManifest, days: int, now: dt.datetime
) -> dict[str, Any]:
    location = tiered.location
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    deleted_at = now.isoformat().replace("+00:00", "Z")
    record: dict[str, Any] = {
        "deleted_at": deleted_at,
        "month": month_text(manifest.month),
        "generation": manifest.generation,
        "reason": f"retention: older than {days} days",
        "rows": manifest.rows,
        "fingerprint": hex_fp(manifest.fingerprint),
        "files": [
            {"path": f.path, "sha256": f.sha256, "rows": f.rows, "bytes": f.bytes} for f in manifest.files
        ],
    }
    name = f"{DELETIONS}/{stamp}-{month_text(manifest.month)}-g{manifest.generation:06d}.json"
    location.create_exclusive(name, json.dumps(record, indent=1, sort_keys=True).encode())
    tombstone = MonthManifest(manifest.month, manifest.generation + 1, (), deleted_at, tiered.name, True)
    with tiered.view.exclusive():
        if not location.create_exclusive(tombstone.relpath, tombstone.to_json()):
            raise ArchiveBusyError(f"{month_text(manifest.month)} changed while it was being deleted")
        tiered.refresh()
    for f in manifest.files:
        location.delete(f.path)
    return record


def _remove_leftovers(tiered: TieredStore) -> None:
    """Files of deleted months that a crash left behind (their month's newest manifest is a deletion)."""
    location = tiered.location
    served = tiered.reader.months()
    for directory in location.list_dirs():
        for month_rel in location.list_dirs(directory):
            names = [r.rpartition("/")[2] for r in location.list_files(month_rel)]
            gens = [g for g in (manifest_generation(n) for n in names) if g is not None]
            if not gens or any(month_dir(m) == month_rel for m in served):
                continue
            newest = MonthManifest.from_json(
                location.read_bytes(f"{month_rel}/_manifest-g{max(gens):06d}.json")
            )
            if newest.deleted:
                for name in names:
                    if manifest_generation(name) is None:
                        location.delete(f"{month_rel}/{name}")


def deletion_log(tiered: TieredStore) -> list[dict[str, Any]]:
    """Every deletion record, oldest first."""
    location = tiered.location
    return [
        json.loads(location.read_bytes(rel))
        for rel in location.list_files(DELETIONS)
        if rel.endswith(".json")
    ]
