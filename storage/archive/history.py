"""Verifiable history across the tiers: a cell's state and a workbook's cells as of a time, merged.

Each tier answers from its own events (the hot store, the archive reader); an event lives in
exactly one tier, so the merged answer is exact:

- a cell: the later (timestamp, event_id) of the two tiers' answers;
- a workbook page: each tier gives its first `limit` cells after the cursor in (sheet, cell)
  order. A tier that returned `limit` cells has said nothing about cells past its last one, so
  the merged page stops at the smallest such last cell; below it every cell of both tiers is
  known, and a cell both tiers set keeps the later event.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage.schema import EVENT_SCHEMA

__all__ = ["later_event", "merge_workbook_pages"]

_NEWEST = [("timestamp", "descending"), ("event_id", "descending")]


def later_event(tables: list[pa.Table]) -> pa.Table:
    """The one row with the greatest (timestamp, event_id) of the tables (each zero or one row)."""
    table = pa.concat_tables([t.cast(EVENT_SCHEMA) for t in tables])
    return table.sort_by(_NEWEST).slice(0, 1)


def merge_workbook_pages(pages: list[pa.Table], limit: int) -> pa.Table:
    """One (sheet, cell)-ordered page of `limit` cells from the tiers' pages (see the module doc)."""
    full = [p for p in pages if p.num_rows >= limit]
    table = pa.concat_tables([p.cast(EVENT_SCHEMA) for p in pages])
    if table.num_rows == 0:
        return table
    table = table.sort_by([("sheet_name", "ascending"), ("cell_address", "ascending"), *_NEWEST])
    sheets, cells = table.column("sheet_name"), table.column("cell_address")
    first = np.ones(table.num_rows, dtype=np.bool_)
    if table.num_rows > 1:
        same = pc.and_(pc.equal(sheets[1:], sheets[:-1]), pc.equal(cells[1:], cells[:-1]))
        first[1:] = ~np.asarray(same.to_numpy(zero_copy_only=False), dtype=np.bool_)
    table = table.filter(pa.array(first))
    if full:
        bound = min((p.column("sheet_name")[-1].as_py(), p.column("cell_address")[-1].as_py()) for p in full)
        keys = zip(
            table.column("sheet_name").to_pylist(), table.column("cell_address").to_pylist(), strict=True
        )
        known = np.fromiter(((s, c) <= bound for s, c in keys), dtype=np.bool_, count=table.num_rows)
        table = table.filter(pa.array(known))
    return table.slice(0, limit)
