"""Sessions: `GET /api/sessions` (a bare JSON array, paged by header) and `GET /api/sessions/{id}`.

The contract makes the listing's body a bare array, so the next page travels in headers:
`X-Next-Cursor: <token>` and `Link: <url with cursor>; rel="next"` (RFC 8288).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Final

import pyarrow as pa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from api.cursor import cursor_key, decode_session_cursor, encode_session_cursor
from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.filters import DEFAULT_LIMIT, JSON_MAX_LIMIT, parse_session_query, raw_from_query
from api.formats import table_records
from api.openapi import errors, ok, query_parameters
from api.openapi_models import Session, SessionDetail
from storage.base import EventStore
from storage.log.completeness import Completeness, session_numbers_completeness

__all__ = ["SESSION_FIELDS", "router"]

router = APIRouter(tags=["sessions"])

SESSION_FIELDS: Final = (
    "session_id",
    "user_name",
    "machine_name",
    "start_time",
    "end_time",
    "duration_s",
    "event_count",
    "workbooks",
)


def _records(table: pa.Table) -> list[dict[str, Any]]:
    rows = table_records(table.select(list(SESSION_FIELDS)))
    for row in rows:
        row["duration_s"] = float(row["duration_s"]) if row["duration_s"] is not None else None
        row["workbooks"] = list(row["workbooks"] or [])
    return rows


def _position(table: pa.Table, index: int) -> tuple[dt.datetime, str]:
    start: dt.datetime = table.column("start_time")[index].as_py()
    return start, str(table.column("session_id")[index].as_py())


@router.get(
    "/api/sessions",
    summary="Sessions newest first; next page in X-Next-Cursor / Link",
    responses=ok(list[Session], "sessions, newest first") | errors(400),
    openapi_extra=query_parameters(
        "user_name", "from", "to", "cursor", limit=(JSON_MAX_LIMIT, DEFAULT_LIMIT), single=("user_name",)
    ),
)
async def list_sessions(request: Request, store: StoreDep, settings: SettingsDep) -> JSONResponse:
    """Filters `user_name`, `from`, `to`; `limit` 1-10,000 (default 100); `cursor` from a previous page."""
    flt, limit, token = parse_session_query(raw_from_query(request.query_params.multi_items()))
    key = cursor_key(settings)
    after = decode_session_cursor(token, flt, key) if token else None
    table = await run_in_threadpool(store.sessions, flt, limit + 1, after)
    headers: dict[str, str] = {}
    if table.num_rows > limit:
        table = table.slice(0, limit)
        next_token = encode_session_cursor(_position(table, limit - 1), flt, key)
        next_url = request.url.include_query_params(cursor=next_token)
        headers = {"X-Next-Cursor": next_token, "Link": f'<{next_url}>; rel="next"'}
    return JSONResponse(_records(table), headers=headers)


@router.get(
    "/api/sessions/{session_id}",
    summary="One session's figures",
    response_model=None,
    responses=ok(SessionDetail, "the session and its completeness")
    | errors(404, s404="no session with that id"),
)
async def get_session(session_id: str, store: StoreDep) -> dict[str, Any]:
    """The session object with its completeness; 404 `not_found` when no event carries that session id.

    Completeness comes from the optional `session_seq` the add-in numbers events with:
    `missing_seq` ranges below the highest number that never arrived (`missing_count` in all),
    `conflicting_seq` numbers sent with two different contents, `has_end` whether a session_end
    arrived (storage.log.completeness).
    """
    if len(session_id) > 128:
        raise ApiError(404, "not_found", "no session with that id")
    table = await run_in_threadpool(store.session, session_id)
    if table.num_rows == 0:
        raise ApiError(404, "not_found", "no session with that id")
    found = await run_in_threadpool(_completeness, store, session_id)
    record = _records(table)[0]
    record.update(
        max_seq=found.max_seq,
        missing_count=found.missing_count,
        missing_seq=[{"first": a, "last": b} for a, b in found.missing],
        conflicting_seq=found.conflicting_seq,
        has_end=found.has_end,
    )
    return record


def _completeness(store: EventStore, session_id: str) -> Completeness:
    """Counts per number pushed down to the store; events read only for numbers seen twice."""
    numbers = store.session_numbers(session_id)
    return session_numbers_completeness([numbers], lambda seqs: store.session_seq_events(session_id, seqs))
