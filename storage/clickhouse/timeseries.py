"""Bucket arithmetic and zero-filling for time series, vectorised in Arrow/numpy.

The engine returns only non-empty (bucket, group, count) cells, at most `max_points + 1` of them
(queries.capped); the grid of every bucket between the first and last one for every group that
appears is built here as arrays, never row by row, and only once its size (buckets x groups) is
known to fit `max_points`: a wide grid (5,200 minutes x 701 users once took 26 s and 3.2 GB) is
refused before anything is allocated.
"""

from __future__ import annotations

import datetime as dt
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.base import Bucket
from storage.clickhouse.queries import micros
from storage.errors import InvalidQueryError
from storage.schema import UTC_MICROS

__all__ = ["MAX_BUCKETS", "bucket_bounds", "bucket_width", "too_many_points", "zero_fill"]

MAX_BUCKETS: Final = 100_000
_MINUTE: Final = 60_000_000
_WIDTHS: Final[dict[str, int]] = {
    "minute": _MINUTE,
    "hour": 60 * _MINUTE,
    "day": 1440 * _MINUTE,
    "week": 7 * 1440 * _MINUTE,
}
#: 1970-01-05 was a Monday: week buckets are counted from there.
_WEEK_OFFSET: Final = 4 * 1440 * _MINUTE

SERIES_SCHEMA: Final = pa.schema(
    [
        pa.field("ts", UTC_MICROS, nullable=False),
        pa.field("group", pa.string()),
        pa.field("count", pa.int64()),
    ]
)


def bucket_width(bucket: Bucket) -> tuple[int, int]:
    """(width, offset) in microseconds: bucket index = (ts - offset) // width."""
    if bucket not in _WIDTHS:
        raise InvalidQueryError(f"unknown bucket {bucket!r}")
    return _WIDTHS[bucket], _WEEK_OFFSET if bucket == "week" else 0


def bucket_bounds(
    start: dt.datetime | None, end: dt.datetime | None, width: int, offset: int
) -> tuple[int | None, int | None]:
    """Bucket indexes of `start` and of `end - 1 µs`; raises when both are known and too far apart."""
    lo = (micros(start) - offset) // width if start is not None else None
    hi = (micros(end) - 1 - offset) // width if end is not None else None
    if lo is not None and hi is not None and hi - lo + 1 > MAX_BUCKETS:
        raise InvalidQueryError(f"more than {MAX_BUCKETS} buckets: narrow the range or widen the bucket")
    return lo, hi


def too_many_points(
    max_points: int, buckets: int | None = None, groups: int | None = None
) -> InvalidQueryError:
    """The refusal of a grid over `max_points` (with its size when known)."""
    size = (
        f"{buckets * groups:,} points ({buckets:,} buckets x {groups:,} groups)"
        if buckets and groups
        else f"more than {max_points:,} points"
    )
    return InvalidQueryError(
        f"the series would have {size}, more than the {max_points:,} allowed: "
        "narrow the time range, widen the bucket, or filter the groups"
    )


def zero_fill(
    counts: pa.Table,
    lo: int | None,
    hi: int | None,
    width: int,
    offset: int,
    grouped: bool,
    max_points: int,
) -> pa.Table:
    """The full grid from `counts` (columns b, grp, n), every group over every bucket lo..hi.

    Raises InvalidQueryError when `counts` holds more than `max_points` cells or the grid would.
    """
    if counts.num_rows > max_points:
        raise too_many_points(max_points)
    b = counts.column("b").to_numpy()
    if lo is None:
        lo = int(b.min()) if len(b) else None
    if hi is None:
        hi = int(b.max()) if len(b) else None
    if lo is None or hi is None or hi < lo:
        return SERIES_SCHEMA.empty_table()
    n_buckets = hi - lo + 1
    if n_buckets > MAX_BUCKETS:
        raise InvalidQueryError(f"more than {MAX_BUCKETS} buckets: narrow the range or widen the bucket")
    grp = counts.column("grp").cast(pa.string())
    groups = pc.unique(grp).sort() if grouped else pa.array([None], pa.string())
    if len(groups) == 0:
        return SERIES_SCHEMA.empty_table()
    n_groups = len(groups)
    if n_buckets * n_groups > max_points:
        raise too_many_points(max_points, n_buckets, n_groups)
    filled = np.zeros(n_buckets * n_groups, dtype=np.int64)
    if len(b):
        gidx = pc.index_in(grp, value_set=groups, skip_nulls=False).to_numpy(zero_copy_only=False)
        keep = (b >= lo) & (b <= hi)
        pos = (b[keep] - lo) * n_groups + gidx[keep].astype(np.int64)
        np.add.at(filled, pos, counts.column("n").to_numpy()[keep])
    starts = (np.arange(lo, hi + 1, dtype=np.int64) * width + offset).repeat(n_groups)
    group_col = groups.take(pa.array(np.tile(np.arange(n_groups), n_buckets)))
    return pa.table(
        {"ts": pa.array(starts, UTC_MICROS), "group": group_col, "count": pa.array(filled, pa.int64())},
        schema=SERIES_SCHEMA,
    )
