"""A store that forwards every Protocol call to another store through one hook.

Wrappers that add behaviour around a real store (deferred opening, fault injection in tests)
override `_forward` once instead of restating the nine read and write methods.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

import pyarrow as pa

from storage.base import (
    MAX_SERIES_POINTS,
    AppendResult,
    Bucket,
    Cursor,
    EventFilter,
    EventStore,
    ExportResult,
    GroupBy,
    HealthCheck,
    Page,
    SessionFilter,
    Stats,
)
from storage.internals import internals_of

__all__ = ["ForwardingStore"]

T = TypeVar("T")


class ForwardingStore:
    """Every call goes to `inner` through `_forward`; subclasses change what surrounds it."""

    def __init__(self, inner: EventStore) -> None:
        self.inner = inner
        self.name = inner.name

    def _forward(self, call: Callable[[], T]) -> T:
        """Run one call of the inner store; the place to guard, delay or fail it."""
        return call()

    def open(self) -> None:
        """`inner.open`."""
        self.inner.open()

    def close(self) -> None:
        """`inner.close`."""
        self.inner.close()

    def health(self) -> HealthCheck:
        """`inner.health`."""
        return self.inner.health()

    def append(self, batch: pa.Table, /) -> AppendResult:
        """`inner.append` through the hook."""
        return self._forward(lambda: self.inner.append(batch))

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """`inner.query` through the hook."""
        return self._forward(lambda: self.inner.query(flt, page))

    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """`inner.page_end` through the hook."""
        return self._forward(lambda: self.inner.page_end(flt, page))

    def get_event(self, event_id: str, /) -> pa.Table:
        """`inner.get_event` through the hook."""
        return self._forward(lambda: self.inner.get_event(event_id))

    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """`inner.after_leaf` through the hook."""
        return self._forward(lambda: self.inner.after_leaf(flt, after, limit))

    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """`inner.cell_history` through the hook."""
        return self._forward(lambda: self.inner.cell_history(workbook_name, sheet_name, cell_address, limit))

    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """`inner.stats` through the hook."""
        return self._forward(lambda: self.inner.stats(flt, top))

    def timeseries(
        self,
        flt: EventFilter,
        bucket: Bucket,
        group_by: GroupBy | None,
        max_points: int = MAX_SERIES_POINTS,
        /,
    ) -> pa.Table:
        """`inner.timeseries` through the hook."""
        return self._forward(lambda: self.inner.timeseries(flt, bucket, group_by, max_points))

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """`inner.sessions` through the hook."""
        return self._forward(lambda: self.inner.sessions(flt, limit, after))

    def session(self, session_id: str, /) -> pa.Table:
        """`inner.session` through the hook."""
        return self._forward(lambda: self.inner.session(session_id))

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        """`inner.export` through the hook."""
        return self._forward(lambda: self.inner.export(flt, destination))

    def cell_state(
        self, workbook_name: str, sheet_name: str, cell_address: str, at: dt.datetime, /
    ) -> pa.Table:
        """`inner.cell_state` through the hook."""
        return self._forward(lambda: self.inner.cell_state(workbook_name, sheet_name, cell_address, at))

    def workbook_state(
        self, workbook_name: str, at: dt.datetime, limit: int, after: tuple[str, str] | None, /
    ) -> pa.Table:
        """`inner.workbook_state` through the hook."""
        return self._forward(lambda: self.inner.workbook_state(workbook_name, at, limit, after))

    def session_numbers(self, session_id: str, /) -> pa.Table:
        """`inner.session_numbers` through the hook."""
        return self._forward(lambda: self.inner.session_numbers(session_id))

    def session_seq_events(self, session_id: str, seqs: list[int], /) -> pa.Table:
        """`inner.session_seq_events` through the hook."""
        return self._forward(lambda: self.inner.session_seq_events(session_id, seqs))

    def internals(self) -> dict[str, float]:
        """The inner store's internals (storage.internals) through the hook; {} when it has none."""
        return self._forward(lambda: internals_of(self.inner))
