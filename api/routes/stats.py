"""Dashboard statistics: `GET /api/stats` and `GET /api/stats/timeseries`.

Both are computed inside the engine (columnar aggregations); this module only parses the request
and shapes the result tables into the contract's JSON (the series column-wise: it may hold
`max_series_points` points).
"""

from __future__ import annotations

import json
from typing import Any, Final, cast, get_args

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import SettingsDep, StoreDep
from api.errors import ApiError
from api.filters import RawParams, int_param, parse_filter, raw_from_query, single
from api.formats import iso, iso_timestamps, joined, json_strings
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


def series_json(bucket: str, table: pa.Table) -> bytes:
    """The contract's `{"bucket", "series": [{"ts", "count", "group"}]}`, built column-wise.

    A series may hold `max_series_points` points: one Arrow pass per column, no dict per point.
    """
    ts = json_strings(iso_timestamps(_one_chunk(table.column("ts"))))
    counts = _one_chunk(table.column("count")).cast(pa.string())
    groups = json_strings(_one_chunk(table.column("group")).cast(pa.string()))
    points = pc.binary_join_element_wise('{"ts":', ts, ',"count":', counts, ',"group":', groups, "}", "")
    return f'{{"bucket":{json.dumps(bucket)},"series":[{joined(points, ",")}]}}'.encode()


def _one_chunk(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


@router.get(
    "/api/stats/timeseries",
    summary="Event counts per time bucket, zero-filled",
    response_model=None,
    responses=ok(Timeseries, "the series")
    | errors(
        400,
        s400="invalid query, more than 100,000 buckets, or more points (buckets x groups) than "
        "GOVTRACK_MAX_SERIES_POINTS (default 250,000)",
    ),
    openapi_extra=query_parameters(*FILTERS, "bucket", "group_by"),
)
async def timeseries(request: Request, store: StoreDep, settings: SettingsDep) -> Response:
    """`bucket` minute|hour|day|week (default hour), optional `group_by`, plus the read filters.

    A grid wider than `max_series_points` (buckets x groups) is refused by the store before it is
    built: 400 `invalid_query`, saying how to narrow it.
    """
    raw = raw_from_query(request.query_params.multi_items())
    bucket = cast(Bucket, _choice(raw, "bucket", BUCKETS, "hour"))
    group_by = cast(GroupBy | None, _choice(raw, "group_by", GROUPS, None))
    flt = parse_filter(raw)
    table = await run_in_threadpool(store.timeseries, flt, bucket, group_by, settings.max_series_points)
    body = await run_in_threadpool(series_json, bucket, table)
    return Response(body, media_type="application/json")
