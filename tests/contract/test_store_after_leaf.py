"""`after_leaf` on every store: the log's leaves in commit order, filtered, bounded, resumable.

What GET /api/events/stream relies on: walking `after_leaf` from any leaf visits every later
matching event exactly once, in commit order, even while appends go on, as long as each read is
bounded by the log's committed size (`leaves_before`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from typing import Any

import pytest

from storage.base import EventFilter, EventStore
from storage.errors import InvalidQueryError
from tests.contract.events import BASE, Row, event, matches, table, varied


def walk(store: EventStore, flt: EventFilter, after: int = -1, limit: int = 7) -> list[Row]:
    """Every row after leaf `after`, page by page, each page resuming from the last leaf seen."""
    seen: list[Row] = []
    while True:
        page = store.after_leaf(flt, after, limit).to_pylist()
        seen.extend(page)
        if len(page) < limit:
            return seen
        after = page[-1]["leaf_index"]


def committed(store: EventStore) -> int:
    """The log's committed size: what a tail reader bounds its reads with."""
    log: Any = getattr(store, "transparency_log", None)
    assert log is not None, "the store keeps no log"
    return int(log.next_index)


def batches() -> list[list[Row]]:
    """`varied()` in three appends, timestamps out of commit order, across two months."""
    rows = varied(60)
    return [rows[40:], rows[:25], rows[25:40]]


def test_leaves_come_in_commit_order_each_once(store: EventStore) -> None:
    parts = batches()
    for part in parts:
        store.append(table(part))
    store.append(table(parts[1][:5]))  # a resent part: no new leaf
    got = walk(store, EventFilter())
    assert [r["leaf_index"] for r in got] == list(range(60))
    first = 0
    for part in parts:  # each append's events are the next contiguous leaves
        ids = {r["event_id"] for r in got[first : first + len(part)]}
        assert ids == {r["event_id"] for r in part}
        first += len(part)
    assert walk(store, EventFilter(), after=59) == []
    assert [r["leaf_index"] for r in walk(store, EventFilter(), after=41, limit=4)] == list(range(42, 60))


FILTERS = [
    EventFilter(user_names=("CORP\\bob",)),
    EventFilter(event_types=("cell_change", "macro_run"), sheet_names=("Sheet1",)),
    EventFilter(start=BASE + dt.timedelta(days=3), end=BASE + dt.timedelta(days=6)),
    EventFilter(session_id="s-2", text="new"),
    EventFilter(machine_name="PC-1", correlation_id="c-0", cell_address="B3"),
    EventFilter(workbook_names=("nope.xlsx",)),
]


def test_filters_apply_and_keep_leaf_order(store: EventStore) -> None:
    for part in batches():
        store.append(table(part))
    everything = walk(store, EventFilter(), limit=100)
    for flt in FILTERS:
        expected = [r["event_id"] for r in everything if matches(r, flt)]
        got = walk(store, flt, limit=3)
        assert [r["event_id"] for r in got] == expected, flt
        resumed = walk(store, flt, after=30, limit=3)
        assert [r["event_id"] for r in resumed] == [r["event_id"] for r in got if r["leaf_index"] > 30], flt


def test_leaves_before_bounds_the_read(store: EventStore) -> None:
    store.append(table([event(i) for i in range(1, 21)]))
    bounded = EventFilter(leaves_before=12)
    assert [r["leaf_index"] for r in walk(store, bounded, after=4, limit=5)] == list(range(5, 12))
    assert store.after_leaf(dataclasses.replace(bounded, leaves_before=0), -1, 10).num_rows == 0
    with pytest.raises(InvalidQueryError):
        store.after_leaf(EventFilter(), -1, 0)


def test_reading_while_appends_go_on_sees_every_leaf_once(store: EventStore) -> None:
    """A tail reader bounded by the committed size misses nothing and reads nothing twice."""
    appends = 25
    done = threading.Event()

    def append() -> None:
        try:
            for k in range(appends):
                rows = [
                    event(1000 + 8 * k + j, timestamp=BASE + dt.timedelta(days=40 * (j % 2)))
                    for j in range(8)
                ]
                store.append(table(rows))  # two months per append: ClickHouse inserts twice
        finally:
            done.set()

    writer = threading.Thread(target=append)
    writer.start()
    seen: list[int] = []
    position = -1
    while True:
        finished = done.is_set()
        end = committed(store)
        page = store.after_leaf(EventFilter(leaves_before=end), position, 5).to_pylist()
        seen.extend(r["leaf_index"] for r in page)
        position = page[-1]["leaf_index"] if len(page) == 5 else end - 1
        if finished and len(page) < 5 and position == committed(store) - 1:
            break
    writer.join()
    assert seen == list(range(appends * 8))
