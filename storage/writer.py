"""Group commit: concurrent requests share one append, and each waits for its rows' append.

Why: both engines want few large inserts (an embedded-ClickHouse insert costs 5-8 ms whatever its
size and makes a part to merge; Parquet wants big files). While one append runs in a worker
thread, newly submitted tables queue up; the next append takes all queued tables (whole tables,
up to `max_rows`) concatenated into one batch, de-duplicated by event_id (first wins).

Each caller is answered only after the append holding its rows returned, so an acknowledged
row is durable. A failed append fails exactly the callers whose rows it held.

The writer sits in front of an `Appender`: in the service that is the `ResilientAppender` (store,
or the spool when the store is unavailable), so one coalesced group is one store append or one
spool file, and every caller of a group gets that group's `Outcome` (stored or queued). Tests and
benchmarks that want the bare store use `DirectAppender`.

Backpressure: at most `max_pending_rows` rows may wait (queued plus the group in flight); past
that `submit` raises `WriterOverloadedError` at once (HTTP 429) instead of letting memory grow.
A single table is always admitted when nothing is pending, however large, so no batch within the
request limits is refused forever.

Per-caller `AppendResult`: rows dropped as duplicates of an earlier table in the same group are
attributed exactly; duplicates the store itself reports (already-stored ids) are apportioned to
the callers in proportion to their rows, so the split is approximate but the sums match the store.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from storage import tracing
from storage.base import AppendResult, EventStore
from storage.errors import TransientStoreError
from storage.resilient import Outcome
from storage.schema import EVENT_SCHEMA

__all__ = [
    "Appender",
    "DirectAppender",
    "GroupCommitWriter",
    "WriterOverloadedError",
    "WriterStats",
    "WriterStoppedError",
]


class WriterOverloadedError(Exception):
    """Too many rows are waiting for the writer; the caller should answer 429 and retry later."""


class WriterStoppedError(TransientStoreError):
    """The writer is shutting down and takes nothing new (HTTP 503 `shutting_down`)."""


class Appender(Protocol):
    """Where a coalesced group goes: stored or spooled, reported as an `Outcome`."""

    def append(self, table: pa.Table, /) -> Outcome:
        """Store (or durably queue) `table`; raise when it is neither."""
        ...


class DirectAppender:
    """The bare store as an `Appender`: every append is `stored` or raises."""

    def __init__(self, store: EventStore) -> None:
        self.store = store

    def append(self, table: pa.Table, /) -> Outcome:
        """One store append."""
        return Outcome("stored", table.num_rows, result=self.store.append(table))


@dataclass(slots=True)
class _Pending:
    table: pa.Table
    future: asyncio.Future[Outcome]
    caller: tracing.Span | None = field(default_factory=tracing.current)  # parent of the commit's span


@dataclass(slots=True)
class WriterStats:
    """Counters for /health and metrics: how many appends carried how many requests and rows."""

    appends: int = 0
    requests: int = 0
    rows: int = 0
    queued_appends: int = 0
    failures: int = 0
    overloaded: int = 0
    in_flight: bool = False
    last_error: str = ""


@dataclass(slots=True)
class _Group:
    items: list[_Pending] = field(default_factory=list)
    rows: int = 0


class GroupCommitWriter:
    """Coalesce concurrent `submit` calls into single `appender.append` calls, run in a thread."""

    def __init__(
        self,
        appender: Appender,
        *,
        max_rows: int,
        max_wait_s: float,
        max_pending_rows: int | None = None,
    ) -> None:
        self._appender = appender
        self._max_rows = max_rows
        self._max_wait_s = max_wait_s
        self._max_pending_rows = max_pending_rows
        self._queue: list[_Pending] = []
        self._queued_rows = 0
        self._in_flight_rows = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.stats = WriterStats()

    def start(self) -> None:
        """Start the commit loop on the running event loop."""
        if self._task is not None:
            return
        self._wakeup = asyncio.Event()
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="govtrack-group-commit")

    @property
    def queued_rows(self) -> int:
        """Rows waiting for the next append (not counting the one in flight)."""
        return self._queued_rows

    @property
    def pending_rows(self) -> int:
        """Rows queued plus rows in the append in flight: what backpressure bounds."""
        return self._queued_rows + self._in_flight_rows

    async def submit(self, table: pa.Table) -> Outcome:
        """Queue `table` (EVENT_SCHEMA) and return once the append containing it has returned.

        Raises:
            WriterStoppedError: the writer is stopping (or was never started).
            WriterOverloadedError: `max_pending_rows` would be exceeded.
            Exception: whatever the append raised (the batch is then not acknowledged).
        """
        if self._stopping or self._task is None or self._wakeup is None:
            raise WriterStoppedError("writer is not running (shutting down)")
        if not table.schema.equals(EVENT_SCHEMA, check_metadata=False):
            table = table.cast(EVENT_SCHEMA)
        if table.num_rows == 0:
            return Outcome("stored", 0, result=AppendResult(stored=0, duplicates=0))
        pending = self.pending_rows
        if (
            self._max_pending_rows is not None
            and pending
            and pending + table.num_rows > self._max_pending_rows
        ):
            self.stats.overloaded += 1
            raise WriterOverloadedError(
                f"{pending} rows are waiting to be written (limit {self._max_pending_rows})"
            )
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(table, future))
        self._queued_rows += table.num_rows
        self._wakeup.set()
        return await future

    async def drain_and_stop(self) -> None:
        """Refuse new submissions, finish every queued one, then end the loop."""
        self._stopping = True
        if self._task is None or self._wakeup is None:
            return
        self._wakeup.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._wakeup is not None  # noqa: S101 - set by start()
        while True:
            if not self._queue:
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            await self._linger()
            await self._commit(self._take_group())

    async def _linger(self) -> None:
        """Wait briefly for more requests unless enough rows are already queued."""
        if self._max_wait_s > 0 and self._queued_rows < self._max_rows and not self._stopping:
            await asyncio.sleep(self._max_wait_s)

    def _take_group(self) -> _Group:
        """Whole queued tables, oldest first, up to max_rows (always at least one table)."""
        group = _Group()
        while self._queue:
            rows = self._queue[0].table.num_rows
            if group.items and group.rows + rows > self._max_rows:
                break
            group.items.append(self._queue.pop(0))
            group.rows += rows
        self._queued_rows -= group.rows
        return group

    async def _commit(self, group: _Group) -> None:
        self.stats.in_flight = True
        self._in_flight_rows = group.rows
        try:
            callers = (p.caller for p in group.items)
            with tracing.span("group_commit", parents=callers, rows=group.rows, requests=len(group.items)):
                batch, kept = _coalesce([p.table for p in group.items])
                outcome = await asyncio.to_thread(self._appender.append, batch)
            answers = _answers(group.items, kept, outcome)
        except Exception as exc:  # every caller of this append gets the same error
            self.stats.failures += 1
            self.stats.last_error = f"{type(exc).__name__}: {exc}"
            for p in group.items:
                if not p.future.done():
                    p.future.set_exception(exc)
            return
        finally:
            self.stats.in_flight = False
            self._in_flight_rows = 0
        self.stats.appends += 1
        self.stats.queued_appends += int(outcome.queued)
        self.stats.requests += len(group.items)
        self.stats.rows += batch.num_rows
        for p, answer in zip(group.items, answers, strict=True):
            if not p.future.done():  # a caller that went away (cancelled) needs no answer
                p.future.set_result(answer)


def _coalesce(tables: list[pa.Table]) -> tuple[pa.Table, list[int]]:
    """One table of all rows, first occurrence of each event_id kept; rows kept per input table."""
    if len(tables) == 1:
        return tables[0], [tables[0].num_rows]
    combined = pa.concat_tables(tables).combine_chunks()
    idx = pa.array(np.arange(combined.num_rows, dtype=np.int64))
    firsts = (
        pa.table({"event_id": combined.column("event_id"), "i": idx})
        .group_by("event_id", use_threads=False)
        .aggregate([("i", "min")])
        .column("i_min")
    )
    keep = np.sort(firsts.to_numpy())
    bounds = np.cumsum([t.num_rows for t in tables])
    kept_per_table = np.diff(np.searchsorted(keep, bounds), prepend=0).tolist()
    if len(keep) == combined.num_rows:
        return combined, kept_per_table
    return combined.take(pc.cast(pa.array(keep), pa.int64())), kept_per_table


def _answers(items: list[_Pending], kept: list[int], outcome: Outcome) -> list[Outcome]:
    """Each caller's share of the group's outcome: the same spool entry, or its part of the result."""
    if outcome.queued or outcome.result is None:
        return [
            Outcome("queued", p.table.num_rows, entry=outcome.entry, reason=outcome.reason) for p in items
        ]
    results = _apportion(items, kept, outcome.result)
    return [Outcome("stored", p.table.num_rows, result=r) for p, r in zip(items, results, strict=True)]


def _apportion(items: list[_Pending], kept: list[int], result: AppendResult) -> list[AppendResult]:
    """Split the store's result over the callers (see the module docstring)."""
    total_kept = sum(kept)
    shares = [0] * len(items)
    if total_kept and result.duplicates:
        exact = [result.duplicates * k / total_kept for k in kept]
        shares = [int(x) for x in exact]
        rest = result.duplicates - sum(shares)
        for i in sorted(range(len(items)), key=lambda j: exact[j] - shares[j], reverse=True)[:rest]:
            shares[i] += 1
    return [
        AppendResult(stored=k - s, duplicates=p.table.num_rows - k + s)
        for p, k, s in zip(items, kept, shares, strict=True)
    ]
