"""The contract's reads over HTTP, in the shapes tests.contract.agreement checks.

With it, a crash test of a real server process checks the very figures a dashboard gets
(`/api/events`, `/api/stats`, `/api/stats/timeseries`, `/api/sessions`) against the oracle, with
the same code that checks a store object in process.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

import httpx
import pyarrow as pa

from storage.base import EventFilter, GroupBy, Stats
from tests.contract.events import Row

__all__ = ["HttpReader"]

TIMES = ("timestamp", "start_time", "end_time", "ts", "first_event_at", "last_event_at")


def _utc(text: str | None) -> dt.datetime | None:
    return None if text is None else dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def _times(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _utc(v) if k in TIMES else v for k, v in item.items()}


def _window(flt: EventFilter) -> dict[str, str]:
    params = {}
    if flt.start is not None:
        params["from"] = flt.start.isoformat()
    if flt.end is not None:
        params["to"] = flt.end.isoformat()
    assert flt == EventFilter(start=flt.start, end=flt.end), "only time windows go over HTTP here"
    return params


def _counts(items: list[dict[str, Any]], key: str) -> pa.Table:
    return pa.table(
        {
            key: pa.array([i[key] for i in items], pa.string()),
            "count": pa.array([i["count"] for i in items], pa.int64()),
        }
    )


class HttpReader:
    """A FigureReader (tests.contract.agreement) over a running server at `base`."""

    def __init__(self, base: str) -> None:
        self.client = httpx.Client(base_url=base, timeout=120)

    def _get(self, path: str, **params: Any) -> httpx.Response:
        resp = self.client.get(path, params=params)
        assert resp.status_code == 200, f"GET {path} {params}: {resp.status_code} {resp.text[:500]}"
        return resp

    def rows(self) -> list[Row]:
        out: list[Row] = []
        params: dict[str, Any] = {"limit": 10_000, "order": "asc"}
        while True:
            body = self._get("/api/events", **params).json()
            out += [_times(e) for e in body["events"]]
            if body["next_cursor"] is None:
                return out
            params["cursor"] = body["next_cursor"]

    def stats(self, flt: EventFilter, top: int) -> Stats:
        body = self._get("/api/stats", top=top, **_window(flt)).json()
        return Stats(
            total_events=body["total_events"],
            unique_users=body["unique_users"],
            unique_workbooks=body["unique_workbooks"],
            unique_sessions=body["unique_sessions"],
            first_event_at=_utc(body["first_event_at"]),
            last_event_at=_utc(body["last_event_at"]),
            by_event_type=_counts(body["by_event_type"], "event_type"),
            top_users=_counts(body["top_users"], "user_name"),
            top_workbooks=_counts(body["top_workbooks"], "workbook_name"),
        )

    def hour_series(self, flt: EventFilter, group_by: GroupBy | None) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"bucket": "hour", **_window(flt)}
        if group_by is not None:
            params["group_by"] = group_by
        series = self._get("/api/stats/timeseries", **params).json()["series"]
        return [{"group": None, **_times(p)} for p in series]

    def sessions(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 1000}
        while True:
            resp = self._get("/api/sessions", **params)
            out += [_times(s) for s in resp.json()]
            cursor = resp.headers.get("X-Next-Cursor")
            if not cursor:
                return out
            params["cursor"] = cursor

    def session(self, session_id: str) -> list[dict[str, Any]]:
        resp = self.client.get(f"/api/sessions/{quote(session_id, safe='')}")
        if resp.status_code == 404:
            return []
        assert resp.status_code == 200, resp.text[:500]
        return [_times(resp.json())]

    def close(self) -> None:
        self.client.close()
