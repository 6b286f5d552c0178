"""OpenTelemetry spans on the write path and around store calls, free when tracing is off.

The HTTP layer decides whether to trace (api/tracing.py: GOVTRACK_TRACING and the OTEL_*
variables) and hands a tracer to `use()`; until then every `span()` returns one shared no-op
context manager, so an instrumented line costs a function call and a global read (measured: see
api/tracing.py) and the store is not wrapped at all.

Request ids travel with the spans: a span copies `govtrack.request_id` (or the list
`govtrack.request_ids`) from its parent, and a group commit, which serves several requests,
takes its parent from the first request and links the others, carrying all their ids.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Final

import pyarrow as pa
from opentelemetry import trace
from opentelemetry.trace import Link, Span, Tracer

from storage.base import (
    MAX_SERIES_POINTS,
    AppendResult,
    Bucket,
    Cursor,
    EventFilter,
    EventStore,
    ExportResult,
    GroupBy,
    Page,
    SessionFilter,
    Stats,
)
from storage.forwarding import ForwardingStore

__all__ = ["REQUEST_ID", "REQUEST_IDS", "Span", "TracedStore", "current", "enabled", "span", "traced", "use"]

REQUEST_ID: Final = "govtrack.request_id"
REQUEST_IDS: Final = "govtrack.request_ids"
_OFF: Final = contextlib.nullcontext(trace.INVALID_SPAN)
_tracer: Tracer | None = None


def use(tracer: Tracer | None) -> None:
    """Trace with `tracer` from now on (process-wide, like OpenTelemetry itself); None: stop."""
    global _tracer
    _tracer = tracer


def enabled() -> bool:
    """Whether spans are being recorded."""
    return _tracer is not None


def current() -> Span | None:
    """The current span when tracing (to parent work done later elsewhere), else None."""
    return None if _tracer is None else trace.get_current_span()


def span(
    name: str, *, parents: Iterable[Span | None] = (), **attributes: str | int | float | bool
) -> AbstractContextManager[Span]:
    """A child span of the current one (or of `parents[0]`, linking the rest); no-op when off.

    Attributes are namespaced `govtrack.<key>`; the request id(s) of the parent(s) are copied.
    """
    if _tracer is None:
        return _OFF
    return _started(_tracer, name, list(parents), attributes)


@contextlib.contextmanager
def _started(
    tracer: Tracer, name: str, parents: list[Span | None], attributes: dict[str, str | int | float | bool]
) -> Iterator[Span]:
    known = [p for p in parents if p is not None and p.get_span_context().is_valid]
    parent = known[0] if known else trace.get_current_span()
    values: dict[str, Any] = {f"govtrack.{k}": v for k, v in attributes.items()}
    ids = [i for p in (known or [parent]) for i in _request_ids(p)]
    if len(ids) == 1:
        values[REQUEST_ID] = ids[0]
    elif ids:
        values[REQUEST_IDS] = ids
    links = [Link(p.get_span_context()) for p in known[1:]]
    context = trace.set_span_in_context(parent)
    with tracer.start_as_current_span(name, context=context, links=links, attributes=values) as opened:
        yield opened


def _request_ids(parent: Span) -> list[str]:
    attributes = getattr(parent, "attributes", None) or {}
    one = attributes.get(REQUEST_ID)
    return [str(one)] if one is not None else [str(i) for i in attributes.get(REQUEST_IDS, ())]


def traced(store: EventStore) -> EventStore:
    """`store` with a span around every call when tracing is on; `store` itself when off."""
    return store if _tracer is None else TracedStore(store)


class TracedStore(ForwardingStore):
    """Spans `store.<method>` around each Protocol call, with row counts where there are rows."""

    def append(self, batch: pa.Table, /) -> AppendResult:
        """A span `store.append` with rows in, stored and duplicates out."""
        with span("store.append", store=self.name, rows=batch.num_rows) as opened:
            result = self.inner.append(batch)
            opened.set_attributes(
                {"govtrack.stored": result.stored, "govtrack.duplicates": result.duplicates}
            )
            return result

    def query(self, flt: EventFilter, page: Page, /) -> pa.Table:
        """A span `store.query` with the rows returned."""
        with span("store.query", store=self.name, limit=page.limit) as opened:
            table = self.inner.query(flt, page)
            opened.set_attribute("govtrack.rows", table.num_rows)
            return table

    def page_end(self, flt: EventFilter, page: Page, /) -> Cursor | None:
        """A span `store.page_end`."""
        with span("store.page_end", store=self.name, limit=page.limit):
            return self.inner.page_end(flt, page)

    def get_event(self, event_id: str, /) -> pa.Table:
        """A span `store.get_event`."""
        with span("store.get_event", store=self.name):
            return self.inner.get_event(event_id)

    def after_leaf(self, flt: EventFilter, after: int, limit: int, /) -> pa.Table:
        """A span `store.after_leaf` with the rows returned."""
        with span("store.after_leaf", store=self.name, after=after, limit=limit) as opened:
            table = self.inner.after_leaf(flt, after, limit)
            opened.set_attribute("govtrack.rows", table.num_rows)
            return table

    def cell_history(self, workbook_name: str, sheet_name: str, cell_address: str, limit: int, /) -> pa.Table:
        """A span `store.cell_history`."""
        with span("store.cell_history", store=self.name, limit=limit):
            return self.inner.cell_history(workbook_name, sheet_name, cell_address, limit)

    def stats(self, flt: EventFilter, top: int, /) -> Stats:
        """A span `store.stats`."""
        with span("store.stats", store=self.name, top=top):
            return self.inner.stats(flt, top)

    def timeseries(
        self,
        flt: EventFilter,
        bucket: Bucket,
        group_by: GroupBy | None,
        max_points: int = MAX_SERIES_POINTS,
        /,
    ) -> pa.Table:
        """A span `store.timeseries`."""
        with span("store.timeseries", store=self.name, bucket=bucket, group_by=group_by or ""):
            return self.inner.timeseries(flt, bucket, group_by, max_points)

    def sessions(self, flt: SessionFilter, limit: int, after: tuple[dt.datetime, str] | None, /) -> pa.Table:
        """A span `store.sessions`."""
        with span("store.sessions", store=self.name, limit=limit):
            return self.inner.sessions(flt, limit, after)

    def session(self, session_id: str, /) -> pa.Table:
        """A span `store.session`."""
        with span("store.session", store=self.name):
            return self.inner.session(session_id)

    def export(self, flt: EventFilter, destination: str, /) -> ExportResult:
        """A span `store.export` with the rows exported."""
        with span("store.export", store=self.name) as opened:
            result = self.inner.export(flt, destination)
            opened.set_attribute("govtrack.rows", int(str(result.manifest.get("rows", 0))))
            return result
