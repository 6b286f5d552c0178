"""Time series of the Parquet store from the hourly rollups, exact and without a scan.

Why: a dashboard's events-per-day chart over a year would otherwise read the timestamp column of
every event. Each data file's rollup (storage.parquet.rollup) holds its event count per (UTC
hour, event_type); hour, day and week buckets are unions of whole hours (weeks start Monday
00:00 UTC), so a file wholly inside the filter's time range contributes its hourly counts
re-bucketed, and only the boundary files are scanned (storage.parquet.queries.timeseries_counts).
The zero-fill is the same SQL as the scan path's (timeseries_fill).

Both paths first gather only the non-empty (bucket, group, count) cells, at most `max_points + 1`
of them, and check the grid's size (buckets x groups) against `max_points` before zero-filling:
a wide grid (5,200 minutes x 701 users once took 26 s and 3.2 GB) is refused, not built.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from storage.base import Bucket
from storage.errors import InvalidQueryError
from storage.parquet import queries as sql
from storage.parquet.rollup import HOURLY, Parts

__all__ = [
    "COUNTS_SCHEMA",
    "MAX_BUCKETS",
    "check_grid",
    "combine",
    "rollup_counts",
    "span",
    "too_many_points",
]

MAX_BUCKETS = 100_000
COUNTS_SCHEMA = pa.schema([("b", pa.int64()), ("g", pa.string()), ("c", pa.int64())])
#: Buckets the hourly rollups can answer exactly.
ROLLUP_BUCKETS = frozenset({"hour", "day", "week"})


def rollup_counts(parts: Parts, bucket: Bucket, grouped: bool) -> pa.Table:
    """(bucket start µs, event_type or NULL, count) from one file's hourly rollup."""
    hourly = parts[HOURLY]
    hours = hourly.column("hour").to_numpy()
    phase, width = sql.bucket_floor(0, bucket), sql.BUCKET_US[bucket]  # any bucket start fixes the grid
    b = (hours - phase) // width * width + phase
    g = hourly.column("key") if grouped else pa.nulls(hourly.num_rows, pa.string())
    return pa.table([pa.array(b, pa.int64()), g, hourly.column("count")], schema=COUNTS_SCHEMA)


def combine(parts: list[pa.Table]) -> pa.Table:
    """Sum counts of the same (bucket, group) over files."""
    if not parts:
        return COUNTS_SCHEMA.empty_table()
    summed = pa.concat_tables(parts).group_by(["b", "g"], use_threads=False).aggregate([("c", "sum")])
    return pa.table([summed.column("b"), summed.column("g"), summed.column("c_sum")], schema=COUNTS_SCHEMA)


def span(
    counts: pa.Table, start_us: int | None, end_us: int | None, bucket: Bucket
) -> tuple[int, int] | None:
    """First and last bucket to zero-fill: from the filter's bounds, else from the data."""
    bounds = pc.min_max(counts.column("b"))
    lo = start_us if start_us is not None else bounds["min"].as_py()
    hi = end_us - 1 if end_us is not None else bounds["max"].as_py()
    if lo is None or hi is None or hi < lo:
        return None
    first, last = sql.bucket_floor(lo, bucket), sql.bucket_floor(hi, bucket)
    if (last - first) // sql.BUCKET_US[bucket] + 1 > MAX_BUCKETS:
        raise InvalidQueryError(f"more than {MAX_BUCKETS} {bucket} buckets requested")
    return first, last


def too_many_points(
    max_points: int, buckets: int | None = None, groups: int | None = None
) -> InvalidQueryError:
    """The refusal of a grid over `max_points` (with its size when known)."""
    size = (
        f"{buckets * groups:,} points ({buckets:,} buckets x {groups:,} groups)"
        if buckets and groups
        else (f"more than {max_points:,} points")
    )
    return InvalidQueryError(
        f"the series would have {size}, more than the {max_points:,} allowed: "
        "narrow the time range, widen the bucket, or filter the groups"
    )


def check_grid(
    counts: pa.Table, first: int, last: int, bucket: Bucket, grouped: bool, max_points: int
) -> None:
    """Refuse a zero-filled grid over `max_points`: buckets first..last times the groups in `counts`."""
    buckets = (last - first) // sql.BUCKET_US[bucket] + 1
    groups = pc.count_distinct(counts.column("g"), mode="all").as_py() if grouped else 1
    if buckets * groups > max_points:
        raise too_many_points(max_points, buckets, groups)
