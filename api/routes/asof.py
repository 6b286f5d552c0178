"""Any cell at any time: `GET /api/cells/state` and `GET /api/workbooks/state`.

A cell's state as of T is what the last event setting it (cell_change, formula_change or
range_change, storage.base.CELL_SETTING_TYPES) at or before T wrote: its new_value and formula.
"Last" is the greatest (timestamp, event_id), the order of every read. Both stores answer it
in the engine (one ordered lookup; one windowed scan per workbook page), and across the archive
tier the two tiers' answers are merged exactly (storage.archive.history).

`at` defaults to now. The workbook's cells come in (sheet_name, cell_address) order, keyset-paged
with a signed cursor bound to the workbook and `at`; JSON, or Arrow / Parquet / CSV / NDJSON by
Accept (the same columns as the JSON `cells`).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Final

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.cursor import cursor_key, decode_cell_cursor, encode_cell_cursor
from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.filters import DEFAULT_LIMIT, JSON_MAX_LIMIT, int_param, parse_timestamp, raw_from_query, single
from api.formats import (
    MEDIA_TYPES,
    canonical,
    event_json_rows,
    event_object,
    for_text_formats,
    iso,
    joined,
    negotiate,
)
from api.openapi import errors, ok, stream_content
from api.openapi_models import CellState, WorkbookState

__all__ = ["CELL_COLUMNS", "router"]

router = APIRouter(tags=["cells"])

#: One cell of a workbook's state: where, what it held, and the event that set it.
CELL_COLUMNS: Final = (
    "sheet_name",
    "cell_address",
    "new_value",
    "formula",
    "event_id",
    "event_type",
    "timestamp",
    "user_name",
    "leaf_index",
)
_RENAMED: Final = {"new_value": "value"}
_CELL: Final = ("workbook_name", "sheet_name", "cell_address")


def _text(raw: dict[str, list[object]], name: str) -> str:
    value = single(raw, name)
    if not isinstance(value, str):
        raise ApiError(
            400, "invalid_query", f"missing {name}", details=[{"field": name, "message": "required"}]
        )
    return value


def _at(raw: dict[str, list[object]]) -> dt.datetime:
    value = single(raw, "at")
    if value is None:
        return dt.datetime.now(dt.UTC)
    try:
        return parse_timestamp(value, "at")
    except ValueError as exc:
        raise ApiError(
            400, "invalid_query", str(exc), details=[{"field": "at", "message": str(exc)}]
        ) from exc


def _timestamp_param(description: str) -> dict[str, object]:
    return {
        "name": "at",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "format": "date-time"},
        "description": description,
    }


def _text_param(name: str, max_length: int, required: bool = True) -> dict[str, object]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "schema": {"type": "string", "maxLength": max_length},
        "description": f"exact {name}",
    }


@router.get(
    "/api/cells/state",
    summary="One cell's value and formula as of a time, and the event that set them",
    responses=ok(CellState, "the cell's state (event null: never set by then)") | errors(400),
    openapi_extra={
        "parameters": [
            _text_param("workbook_name", 1024),
            _text_param("sheet_name", 255),
            _text_param("cell_address", 8192),
            _timestamp_param("the time (ISO-8601, `Z`/offset/none = UTC); default now"),
        ]
    },
)
async def cell_state(request: Request, store: StoreDep) -> Response:
    """`workbook_name`, `sheet_name`, `cell_address` required; `at` defaults to now."""
    raw = raw_from_query(request.query_params.multi_items())
    cell = {name: _text(raw, name) for name in _CELL}
    at = _at(raw)
    table = await run_in_threadpool(
        store.cell_state, cell["workbook_name"], cell["sheet_name"], cell["cell_address"], at
    )
    head = json.dumps({**cell, "at": iso(at)})[:-1]
    if table.num_rows == 0:
        return Response(
            f'{head},"value":null,"formula":null,"event":null}}'.encode(), media_type=MEDIA_TYPES["json"]
        )
    row = canonical(table).slice(0, 1)
    value, formula = (json.dumps(row.column(c)[0].as_py()) for c in ("new_value", "formula"))
    event = event_object(row).decode()
    body = f'{head},"value":{value},"formula":{formula},"event":{event}}}'
    return Response(body.encode(), media_type=MEDIA_TYPES["json"])


@router.get(
    "/api/workbooks/state",
    summary="Every known cell of a workbook as of a time (paged; Arrow/Parquet by Accept)",
    responses=ok(WorkbookState, "the workbook's cells", content=stream_content()) | errors(400),
    openapi_extra={
        "parameters": [
            _text_param("workbook_name", 1024),
            _timestamp_param("the time (ISO-8601, `Z`/offset/none = UTC); default now"),
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": JSON_MAX_LIMIT},
                "description": f"cells per page 1-{JSON_MAX_LIMIT:,}, default {DEFAULT_LIMIT}",
            },
            {
                "name": "cursor",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "maxLength": 2048},
                "description": "`next_cursor` of the previous page (same workbook and `at`)",
            },
            {
                "name": "format",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "enum": list(MEDIA_TYPES)},
                "description": "response format; overrides `Accept`",
            },
        ]
    },
)
async def workbook_state(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    """Cells in (sheet_name, cell_address) order; the next page's cursor in `next_cursor` / X-Next-Cursor."""
    raw = raw_from_query(request.query_params.multi_items())
    workbook = _text(raw, "workbook_name")
    at = _at(raw)
    limit_text = single(raw, "limit")
    try:
        limit = DEFAULT_LIMIT if limit_text is None else int_param(limit_text, "limit", 1, JSON_MAX_LIMIT)
    except ValueError as exc:
        raise ApiError(
            400, "invalid_query", str(exc), details=[{"field": "limit", "message": str(exc)}]
        ) from exc
    key = cursor_key(settings)
    token = single(raw, "cursor")
    after = decode_cell_cursor(str(token), workbook, at, key) if token is not None else None
    fmt = negotiate(request.headers.get("accept"), request.query_params.get("format"))
    table = await run_in_threadpool(store.workbook_state, workbook, at, limit + 1, after)
    next_token = None
    if table.num_rows > limit:
        table = table.slice(0, limit)
        last = (table.column("sheet_name")[-1].as_py(), table.column("cell_address")[-1].as_py())
        next_token = encode_cell_cursor(last, workbook, at, key)
    cells = _cells(canonical(table))
    headers = {"X-Next-Cursor": next_token} if next_token else {}
    if fmt == "json":
        rows = joined(event_json_rows(cells), ",") if cells.num_rows else ""
        head = json.dumps({"workbook_name": workbook, "at": iso(at)})[:-1]
        body = f'{head},"cells":[{rows}],"next_cursor":{json.dumps(next_token)}}}'
        return Response(body.encode(), media_type=MEDIA_TYPES["json"], headers=headers)
    return Response(
        _binary(cells, fmt, settings.csv_neutralize), media_type=MEDIA_TYPES[fmt], headers=headers
    )


def _cells(events: pa.Table) -> pa.Table:
    """The cell columns of setting events, new_value named `value`."""
    return events.select(list(CELL_COLUMNS)).rename_columns([_RENAMED.get(c, c) for c in CELL_COLUMNS])


def _binary(cells: pa.Table, fmt: str, neutralize: bool) -> bytes:
    """A page of cells as Arrow IPC, Parquet, CSV or NDJSON (one page: at most 10,000 rows)."""
    sink = io.BytesIO()
    if fmt == "arrow":
        with ipc.new_stream(sink, cells.schema) as writer:
            writer.write_table(cells)
    elif fmt == "parquet":
        pq.write_table(cells, sink, compression="zstd")
    elif fmt == "csv":
        pcsv.write_csv(for_text_formats(cells, neutralize=neutralize), sink)
    else:
        rows = event_json_rows(cells)
        return (joined(rows, "\n") + "\n").encode() if len(rows) else b""
    return sink.getvalue()
