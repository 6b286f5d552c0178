"""Long reads as a sequence of keyset pages of bounded size, over any store's `query`.

Why: a streamed read of up to 1,000,000 rows, or an export of everything, used to be one engine
query whose whole result was materialised (in the engine's sort and in Arrow) before the first
byte went out. Here the rows come as consecutive keyset pages on (timestamp, event_id), each
`ORDER BY ... LIMIT n` with n sized so a page holds about `batch_bytes` of Arrow data: the engine
keeps a top-n heap of n rows, Python one page, whatever the total. Each page's filter is narrowed
to the time range still ahead (the keyset implies it), so both engines prune files/parts by time.

The pages are read one after another, not from one snapshot: an event stored meanwhile ahead of
the position is included, one stored behind it is not (the same as following next_cursor).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from storage.base import Cursor, EventFilter, Order, Page
from storage.schema import MAX_EVENT_BYTES

__all__ = [
    "EXPORT_BATCH_BYTES",
    "MAX_PAGE_ROWS",
    "MIN_PAGE_ROWS",
    "first_page_rows",
    "keyset_tables",
    "last_key",
]

#: Arrow bytes one page of an export holds (exports run inside the stores, without settings).
EXPORT_BATCH_BYTES: Final = 16 * 1024 * 1024
MIN_PAGE_ROWS: Final = 64
MAX_PAGE_ROWS: Final = 65_536
_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

QueryFn = Callable[[EventFilter, Page], pa.Table]


def first_page_rows(batch_bytes: int) -> int:
    """Rows of the first page: as many maximal events (128 KiB) as fit in `batch_bytes`."""
    return max(MIN_PAGE_ROWS, min(MAX_PAGE_ROWS, batch_bytes // MAX_EVENT_BYTES))


def _next_page_rows(batch_bytes: int, table: pa.Table, previous: int) -> int:
    """Rows of the next page from the last page's bytes per row; at most doubling each time."""
    per_row: int = max(1, int(table.nbytes) // max(1, int(table.num_rows)))
    return max(MIN_PAGE_ROWS, min(MAX_PAGE_ROWS, 2 * previous, batch_bytes // per_row))


def _at(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def _narrowed(flt: EventFilter, order: Order, after: Cursor | None, until: Cursor | None) -> EventFilter:
    """`flt` cut to the time range between `after` and `until` (implied by the keyset, so exact)."""
    start, end = flt.start, flt.end
    low, high = (after, until) if order == "asc" else (until, after)
    if low is not None and (start is None or _at(low.timestamp_us) > start):
        start = _at(low.timestamp_us)
    if high is not None and (end is None or _at(high.timestamp_us + 1) < end):
        end = _at(high.timestamp_us + 1)
    return dataclasses.replace(flt, start=start, end=end)


def last_key(table: pa.Table) -> Cursor:
    """The keyset position of a non-empty table's last row."""
    ts = pc.cast(table.column("timestamp"), pa.int64())[-1].as_py()
    return Cursor(timestamp_us=int(ts), event_id=str(table.column("event_id")[-1].as_py()))


def _not_past(table: pa.Table, until: Cursor, order: Order) -> pa.Table:
    """The rows of `table` up to and including `until` in `order`."""
    ts = pc.cast(table.column("timestamp"), pa.int64())
    ids = table.column("event_id")
    before, past = (pc.less, pc.less_equal) if order == "asc" else (pc.greater, pc.greater_equal)
    keep = pc.or_(
        before(ts, until.timestamp_us),
        pc.and_(pc.equal(ts, until.timestamp_us), past(ids, until.event_id)),
    )
    return table.filter(keep)


def keyset_tables(
    query: QueryFn,
    flt: EventFilter,
    order: Order,
    after: Cursor | None,
    *,
    batch_bytes: int,
    until: Cursor | None = None,
    max_rows: int | None = None,
) -> Iterator[pa.Table]:
    """The matching rows after `after` (up to `until` inclusive, at most `max_rows`), page by page.

    Each yielded table is non-empty, in `order`, and holds about `batch_bytes` of Arrow data (the
    first page assumes maximal events, later ones the sizes just seen).
    """
    rows = first_page_rows(batch_bytes)
    left = max_rows
    position = after
    while left is None or left > 0:
        asked = rows if left is None else min(rows, left)
        page = query(_narrowed(flt, order, position, until), Page(limit=asked, order=order, after=position))
        got = page.num_rows
        if until is not None and got:
            page = _not_past(page, until, order)
        if page.num_rows:
            yield page
        if got < asked or page.num_rows < got:
            return
        position = last_key(page)
        left = None if left is None else left - page.num_rows
        rows = _next_page_rows(batch_bytes, page, rows)
