"""`GET /api/cells/history`: every change of one cell, newest first (who, when, old -> new, formula)."""

from __future__ import annotations

import json
from typing import Final

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import StoreDep
from api.errors import ApiError
from api.filters import JSON_MAX_LIMIT, int_param, raw_from_query, single
from api.formats import canonical, event_json_rows, joined
from api.openapi import errors, ok, query_parameters
from api.openapi_models import CellHistory

__all__ = ["CHANGE_COLUMNS", "router"]

router = APIRouter(tags=["cells"])

CHANGE_COLUMNS: Final = (
    "event_id",
    "timestamp",
    "user_name",
    "event_type",
    "old_value",
    "new_value",
    "formula",
    "session_id",
    "machine_name",
    "leaf_index",
)
DEFAULT_HISTORY_LIMIT: Final = 1_000
_CELL_KEYS: Final = ("workbook_name", "sheet_name", "cell_address")


def _required(raw: dict[str, list[object]]) -> dict[str, str]:
    found = {name: single(raw, name) for name in _CELL_KEYS}
    missing = [name for name, value in found.items() if not isinstance(value, str)]
    if missing:
        details = [{"field": name, "message": "required"} for name in missing]
        raise ApiError(400, "invalid_query", f"missing {', '.join(missing)}", details=details)
    return {name: str(value) for name, value in found.items()}


@router.get(
    "/api/cells/history",
    summary="Every change of one cell, newest first",
    responses=ok(CellHistory, "the cell's changes") | errors(400),
    openapi_extra=query_parameters(
        *_CELL_KEYS,
        limit=(JSON_MAX_LIMIT, DEFAULT_HISTORY_LIMIT),
        required=_CELL_KEYS,
        single=_CELL_KEYS,
    ),
)
async def cell_history(request: Request, store: StoreDep) -> Response:
    """`workbook_name`, `sheet_name` and `cell_address` are required; `limit` is 1-10,000 (default 1,000)."""
    raw = raw_from_query(request.query_params.multi_items())
    cell = _required(raw)
    limit_text = single(raw, "limit")
    try:
        limit = (
            DEFAULT_HISTORY_LIMIT if limit_text is None else int_param(limit_text, "limit", 1, JSON_MAX_LIMIT)
        )
    except ValueError as exc:
        raise ApiError(
            400, "invalid_query", str(exc), details=[{"field": "limit", "message": str(exc)}]
        ) from exc
    args = (cell["workbook_name"], cell["sheet_name"], cell["cell_address"], limit)
    table = await run_in_threadpool(store.cell_history, *args)
    changes = joined(event_json_rows(canonical(table).select(list(CHANGE_COLUMNS))), ",")
    head = json.dumps(cell)[:-1]
    return Response(f'{head},"changes":[{changes}]}}'.encode(), media_type="application/json")
