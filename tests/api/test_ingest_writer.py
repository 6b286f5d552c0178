"""The group-commit writer over every store: coalescing, de-duplication, error isolation, drain."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from typing import Any, cast

import pyarrow as pa
import pytest

from storage.base import AppendResult, EventFilter, EventStore, Page
from storage.errors import TransientStoreError
from storage.resilient import Outcome
from storage.schema import EVENT_SCHEMA
from storage.writer import DirectAppender, GroupCommitWriter

NS = uuid.UUID("5b0c3a52-7f55-4c1e-9a54-1f6f0f3b2a10")
T0 = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)


def events(keys: list[str], batch_id: str = "b") -> pa.Table:
    """Valid stored-schema rows whose event_ids derive from `keys` (same key, same id)."""
    rows = [
        {
            "event_id": str(uuid.uuid5(NS, key)),
            "timestamp": T0 + dt.timedelta(seconds=i),
            "event_type": "cell_change",
            "user_name": "CORP\\alice",
            "attributes": [],
            "received_at": T0,
            "batch_id": batch_id,
        }
        for i, key in enumerate(keys)
    ]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)


class CountingStore:
    """Forwards to the real store, recording each append's row count (a delegate, not a mock)."""

    def __init__(self, inner: EventStore, *, fail_first: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.append_rows: list[int] = []
        self.fail_first = fail_first

    def append(self, batch: pa.Table, /) -> AppendResult:
        self.append_rows.append(batch.num_rows)
        if self.fail_first and len(self.append_rows) == 1:
            raise TransientStoreError("first append fails (test)")
        return self.inner.append(batch)

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.inner, attr)


def stored(store: EventStore) -> list[str]:
    ids: list[str] = store.query(EventFilter(), Page(limit=10_000)).column("event_id").to_pylist()
    return ids


def stored_result(outcome: Outcome) -> AppendResult:
    assert outcome.status == "stored"
    assert outcome.result is not None
    return outcome.result


def run_writer(store: CountingStore, tables: list[pa.Table], **kw: Any) -> list[AppendResult | BaseException]:
    async def main() -> list[AppendResult | BaseException]:
        writer = GroupCommitWriter(DirectAppender(cast(EventStore, store)), **kw)
        writer.start()
        try:
            answers = await asyncio.gather(*(writer.submit(t) for t in tables), return_exceptions=True)
            return [a if isinstance(a, BaseException) else stored_result(a) for a in answers]
        finally:
            await writer.drain_and_stop()

    return asyncio.run(main())


def test_concurrent_submissions_share_one_append(store: EventStore) -> None:
    counting = CountingStore(store)
    tables = [events([f"{i}-{k}" for k in range(4)]) for i in range(10)]
    results = run_writer(counting, tables, max_rows=1000, max_wait_s=0.01)
    assert counting.append_rows == [40]
    assert results == [AppendResult(stored=4, duplicates=0)] * 10
    assert len(set(stored(store))) == len(stored(store)) == 40


def test_coalesced_tables_are_deduplicated_first_wins(store: EventStore) -> None:
    counting = CountingStore(store)
    first = events(["a", "b", "c"], batch_id="first")
    second = events(["b", "c", "d"], batch_id="second")
    results = run_writer(counting, [first, second], max_rows=1000, max_wait_s=0.01)
    assert counting.append_rows == [4]
    assert results == [AppendResult(stored=3, duplicates=0), AppendResult(stored=1, duplicates=2)]
    table = store.query(EventFilter(), Page(limit=100, order="asc"))
    assert table.num_rows == 4
    by_id = dict(zip(table.column("event_id").to_pylist(), table.column("batch_id").to_pylist(), strict=True))
    assert by_id[str(uuid.uuid5(NS, "b"))] == "first"


def test_max_rows_splits_groups_and_errors_reach_only_their_callers(store: EventStore) -> None:
    counting = CountingStore(store, fail_first=True)
    tables = [events(["x1", "x2", "x3"]), events(["y1", "y2", "y3"])]
    results = run_writer(counting, tables, max_rows=3, max_wait_s=0.01)
    assert counting.append_rows == [3, 3]
    assert isinstance(results[0], TransientStoreError)
    assert results[1] == AppendResult(stored=3, duplicates=0)
    assert sorted(stored(store)) == sorted(events(["y1", "y2", "y3"]).column("event_id").to_pylist())


def test_already_stored_rows_count_as_duplicates(store: EventStore) -> None:
    store.append(events(["p", "q"]))
    counting = CountingStore(store)
    results = run_writer(counting, [events(["p", "q", "r"])], max_rows=1000, max_wait_s=0)
    assert results == [AppendResult(stored=1, duplicates=2)]
    assert len(stored(store)) == 3


def test_submit_after_stop_is_refused(store: EventStore) -> None:
    async def main() -> None:
        writer = GroupCommitWriter(DirectAppender(store), max_rows=10, max_wait_s=0)
        writer.start()
        await writer.drain_and_stop()
        with pytest.raises(TransientStoreError):
            await writer.submit(events(["late"]))

    asyncio.run(main())
