"""Read routes for events: `GET /api/events`, `POST /api/events/query`, `GET /api/events/{event_id}`.

The query string and the JSON body are parsed into the same `ReadQuery`; one function pages the
store (limit + 1 rows, so `next_cursor` is null exactly when nothing follows) and renders the
format the client accepts. Ingest (`POST /api/events`) lives in `routes/ingest.py`.

Streamed formats (CSV, NDJSON, Arrow, Parquet) allow 1,000,000 rows; above one batch such a read
is not materialised: the store names the page's last key first (`page_end`, key columns only, so
X-Next-Cursor goes out with the headers), then the rows up to it are fetched as keyset pages of
about GOVTRACK_READ_BATCH_BYTES (storage.keyset) and written out as each arrives. Memory per read
is a few such pages whatever the limit; at most GOVTRACK_MAX_CONCURRENT_LARGE_READS reads over
10,000 rows run at once (api.limits).
"""

from __future__ import annotations

import functools
import itertools
import json
import uuid
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.cursor import cursor_key, decode_event_cursor, encode_event_cursor
from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.filters import (
    DEFAULT_LIMIT,
    JSON_MAX_LIMIT,
    STREAM_MAX_LIMIT,
    ReadQuery,
    parse_event_query,
    raw_from_body,
    raw_from_query,
)
from api.formats import MEDIA_TYPES, Format, event_object, events_response, negotiate, stream_bytes
from api.limits import GuardedStreamingResponse, LargeReadGate, Permit, large_read_gate
from api.openapi import FILTERS, errors, event_read_body, ok, query_parameters, stream_content
from api.openapi_models import Event, EventsPage
from api.settings import Settings
from storage.base import Cursor, EventStore, Page
from storage.keyset import first_page_rows, keyset_tables

__all__ = ["read_page", "router"]

router = APIRouter(tags=["events"])

MAX_QUERY_BODY_BYTES: Final = 1024 * 1024
_STREAM_NOTE: Final = f" (streamed formats: up to {STREAM_MAX_LIMIT:,})"
_PAGE: Final = ok(EventsPage, "a page of events", content=stream_content())


def _format_of(request: Request) -> Format:
    return negotiate(request.headers.get("accept"), request.query_params.get("format"))


def split_page(table: pa.Table, limit: int) -> tuple[pa.Table, Cursor | None]:
    """The first `limit` rows, and the keyset position after them when more rows exist."""
    if table.num_rows <= limit:
        return table, None
    page = table.slice(0, limit)
    last_ts = pc.cast(page.column("timestamp"), pa.int64())[limit - 1].as_py()
    last_id = page.column("event_id")[limit - 1].as_py()
    return page, Cursor(timestamp_us=int(last_ts), event_id=str(last_id))


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What bounds one read: bytes per store page, the CSV policy, and the large-read gate."""

    batch_bytes: int
    csv_neutralize: bool
    gate: LargeReadGate


def _limits(request: Request, settings: Settings) -> ReadLimits:
    return ReadLimits(settings.read_batch_bytes, settings.csv_neutralize, large_read_gate(request))


async def read_page(
    store: EventStore, query: ReadQuery, fmt: Format, key: bytes, limits: ReadLimits
) -> Response:
    """One page of a read: small ones in one store call, streamed formats above one batch in pages.

    A streamed read over JSON_MAX_LIMIT rows holds a large-read permit (429 when none is free)
    until its response has been sent or the client has gone.
    """
    after = decode_event_cursor(query.cursor, query.order, query.flt, key) if query.cursor else None
    if fmt == "json" or query.limit < first_page_rows(limits.batch_bytes):
        page = Page(limit=query.limit + 1, order=query.order, after=after)
        table = await run_in_threadpool(store.query, query.flt, page)
        rows, next_after = split_page(table, query.limit)
        token = encode_event_cursor(next_after, query.order, query.flt, key) if next_after else None
        render = functools.partial(events_response, rows, fmt, token, csv_neutralize=limits.csv_neutralize)
        return await run_in_threadpool(render)
    permit = limits.gate.acquire() if query.limit > JSON_MAX_LIMIT else None
    try:
        return await _streamed(store, query, fmt, key, after, limits, permit)
    except BaseException:
        if permit is not None:
            permit.release()
        raise


async def _streamed(
    store: EventStore,
    query: ReadQuery,
    fmt: Format,
    key: bytes,
    after: Cursor | None,
    limits: ReadLimits,
    permit: Permit | None,
) -> Response:
    """Stream (after, end] page by page, where `end` (the next cursor) is found first, keys only.

    The first page is read before answering, so a store error still gets its error status.
    """
    end = await run_in_threadpool(
        store.page_end, query.flt, Page(limit=query.limit, order=query.order, after=after)
    )
    pages = keyset_tables(
        store.query,
        query.flt,
        query.order,
        after,
        batch_bytes=limits.batch_bytes,
        until=end,
        max_rows=None if end is not None else query.limit,
    )
    first = await run_in_threadpool(next, pages, None)
    tables = pages if first is None else itertools.chain([first], pages)
    headers = {"X-Next-Cursor": encode_event_cursor(end, query.order, query.flt, key)} if end else {}
    body = stream_bytes(tables, fmt, csv_neutralize=limits.csv_neutralize)
    return GuardedStreamingResponse(
        body,
        on_close=permit.release if permit is not None else _nothing,
        media_type=MEDIA_TYPES[fmt],
        headers=headers,
    )


def _nothing() -> None:
    """No permit to release."""


def _max_limit(fmt: Format) -> int:
    return JSON_MAX_LIMIT if fmt == "json" else STREAM_MAX_LIMIT


@router.get(
    "/api/events",
    summary="Read events (JSON, CSV, NDJSON, Arrow IPC or Parquet by Accept)",
    responses=_PAGE | errors(400, 429),
    openapi_extra=query_parameters(
        *FILTERS,
        "order",
        "cursor",
        "format",
        limit=(STREAM_MAX_LIMIT, DEFAULT_LIMIT),
        limit_note=_STREAM_NOTE,
    ),
)
async def list_events(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    """The contract's read filters as query parameters; lists by repeating a parameter."""
    fmt = _format_of(request)
    query = parse_event_query(raw_from_query(request.query_params.multi_items()), max_limit=_max_limit(fmt))
    return await read_page(store, query, fmt, cursor_key(settings), _limits(request, settings))


@router.post(
    "/api/events/query",
    summary="Read events with the filters in a JSON body",
    responses=_PAGE | errors(400, 413, 429),
    openapi_extra=event_read_body(STREAM_MAX_LIMIT),
)
async def query_events(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    """The same filters as `GET /api/events`, as a JSON object (snake, camel or Pascal names)."""
    fmt = _format_of(request)
    body = await request.body()
    if len(body) > MAX_QUERY_BODY_BYTES:
        raise ApiError(413, "payload_too_large", f"a query body is at most {MAX_QUERY_BODY_BYTES} bytes")
    try:
        parsed = json.loads(body) if body.strip() else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
    query = parse_event_query(raw_from_body(parsed), max_limit=_max_limit(fmt))
    return await read_page(store, query, fmt, cursor_key(settings), _limits(request, settings))


@router.get(
    "/api/events/{event_id}",
    summary="One event by id",
    responses=ok(Event, "the event") | errors(404, s404="no event with that id"),
)
async def get_event(event_id: str, store: StoreDep) -> Response:
    """The event as a JSON object; 404 `not_found` when no event has that id (or it is no UUID)."""
    try:
        canonical = str(uuid.UUID(event_id))
    except ValueError:
        raise ApiError(404, "not_found", "no event with that id") from None
    table = await run_in_threadpool(store.get_event, canonical)
    if table.num_rows == 0:
        raise ApiError(404, "not_found", "no event with that id")
    return Response(event_object(table), media_type="application/json")
