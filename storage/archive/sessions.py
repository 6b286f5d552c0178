"""Session figures of a session whose events lie in both tiers, merged exactly from partials.

Each tier answers, per session, the figures of its own events plus the key of its first event
(`session_partials`, PARTIAL_SCHEMA). Tiers never share an event (dedup across tiers at write),
so the whole session is: the first event of the two firsts by (timestamp, event_id) gives user
and machine; start is the min, end the max; the count is the sum; workbooks the sorted union.
"""

from __future__ import annotations

from typing import Any, Final

import pyarrow as pa

from storage.schema import UTC_MICROS

__all__ = ["PARTIAL_SCHEMA", "merge_partials"]

PARTIAL_SCHEMA: Final = pa.schema(
    [
        ("session_id", pa.string()),
        ("first_us", pa.int64()),
        ("first_event_id", pa.string()),
        ("user_name", pa.string()),
        ("machine_name", pa.string()),
        ("start_time", UTC_MICROS),
        ("end_time", UTC_MICROS),
        ("event_count", pa.int64()),
        ("workbooks", pa.list_(pa.string())),
    ]
)


def merge_partials(partials: list[pa.Table], schema: pa.Schema) -> pa.Table:
    """One row per session in the `sessions` columns (`schema`) from the tiers' partial rows."""
    merged: dict[str, dict[str, Any]] = {}
    for table in partials:
        for row in table.to_pylist():
            have = merged.get(row["session_id"])
            if have is None:
                merged[row["session_id"]] = {**row, "workbooks": set(row["workbooks"] or ())}
                continue
            if (row["first_us"], row["first_event_id"]) < (have["first_us"], have["first_event_id"]):
                for key in ("first_us", "first_event_id", "user_name", "machine_name"):
                    have[key] = row[key]
            have["start_time"] = min(have["start_time"], row["start_time"])
            have["end_time"] = max(have["end_time"], row["end_time"])
            have["event_count"] += row["event_count"]
            have["workbooks"] |= set(row["workbooks"] or ())
    rows = [
        {
            "session_id": sid,
            "user_name": r["user_name"],
            "machine_name": r["machine_name"],
            "start_time": r["start_time"],
            "end_time": r["end_time"],
            "duration_s": (r["end_time"] - r["start_time"]).total_seconds(),
            "event_count": r["event_count"],
            "workbooks": sorted(r["workbooks"]),
        }
        for sid, r in merged.items()
    ]
    return pa.Table.from_pylist(rows, schema=schema)
