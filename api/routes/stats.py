"""Dashboard statistics: `GET /api/stats` and `GET /api/stats/timeseries`.

Both are computed inside the engine (columnar aggregations); this module only parses the request
and shapes the small result tables into the contract's JSON.
"""

from __future__ import annotations

from typing import Any, Final, cast, get_args

import pyarrow as pa
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from api.deps import StoreDep
from api.errors import ApiError
from api.filters import RawParams, int_param, parse_filter, raw_from_query, single
from api.formats import iso, table_records
from api.openapi import FILTERS, errors, ok, query_parameters
from api.openapi_models import Stats, Timeseries
from storage.base import Bucket, GroupBy

__all__ = ["router"]

router = APIRouter(tags=["stats"])

DEFAULT_TOP: Final = 10
MAX_TOP: Final = 1_000
BUCKETS: Final[tuple[str, ...]] = get_args(Bucket)
GROUPS: Final[tuple[str, ...]] = get_args(GroupBy)


def _invalid(name: str, message: str) -> ApiError:
    return ApiError(400, "invalid_query", message, details=[{"field": name, "message": message}])


def _top(raw: RawParams) -> int:
    value = single(raw, "top")
    try:
        return DEFAULT_TOP if value is None else int_param(value, "top", 1, MAX_TOP)
    except ValueError as exc:
        raise _invalid("top", str(exc)) from exc


def _pairs(table: pa.Table, key: str) -> list[dict[str, Any]]:
    """(key, count) rows under the contract's names, whatever the engine called the key column."""
    keys, counts = table.column(0).to_pylist(), table.column("count").to_pylist()
    return [{key: k, "count": int(c)} for k, c in zip(keys, counts, strict=True)]


@router.get(
    "/api/stats",
    summary="Totals, distinct counts and top lists over the read filters",
    response_model=None,
    responses=ok(Stats, "the figures") | errors(400),
    openapi_extra=query_parameters(*FILTERS, "top"),
)
async def stats(request: Request, store: StoreDep) -> dict[str, Any]:
    """Exact figures; `top` (1-1000, default 10) bounds the user and workbook lists."""
    raw = raw_from_query(request.query_params.multi_items())
    flt = parse_filter(raw)
    result = await run_in_threadpool(store.stats, flt, _top(raw))
    return {
        "total_events": result.total_events,
        "unique_users": result.unique_users,
        "unique_workbooks": result.unique_workbooks,
        "unique_sessions": result.unique_sessions,
        "first_event_at": iso(result.first_event_at),
        "last_event_at": iso(result.last_event_at),
        "by_event_type": _pairs(result.by_event_type, "event_type"),
        "top_users": _pairs(result.top_users, "user_name"),
        "top_workbooks": _pairs(result.top_workbooks, "workbook_name"),
    }


def _choice(raw: RawParams, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    value = single(raw, name)
    if value is None:
        return default
    if value not in allowed:
        raise _invalid(name, f"{name} must be one of {', '.join(allowed)}")
    return str(value)


@router.get(
    "/api/stats/timeseries",
    summary="Event counts per time bucket, zero-filled",
    response_model=None,
    responses=ok(Timeseries, "the series") | errors(400, s400="invalid query, or more than 100,000 buckets"),
    openapi_extra=query_parameters(*FILTERS, "bucket", "group_by"),
)
async def timeseries(request: Request, store: StoreDep) -> dict[str, Any]:
    """`bucket` minute|hour|day|week (default hour), optional `group_by`, plus the read filters."""
    raw = raw_from_query(request.query_params.multi_items())
    bucket = cast(Bucket, _choice(raw, "bucket", BUCKETS, "hour"))
    group_by = cast(GroupBy | None, _choice(raw, "group_by", GROUPS, None))
    flt = parse_filter(raw)
    table = await run_in_threadpool(store.timeseries, flt, bucket, group_by)
    series = [{"ts": r["ts"], "count": int(r["count"]), "group": r["group"]} for r in table_records(table)]
    return {"bucket": bucket, "series": series}
