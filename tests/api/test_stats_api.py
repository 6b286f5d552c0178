"""GET /api/stats and /api/stats/timeseries on every store: exact against a polars count."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from fastapi.testclient import TestClient

from storage.base import EventStore
from tests.api.readkit import START, assert_error, frame, iso, seed

KEYS = {
    "total_events",
    "unique_users",
    "unique_workbooks",
    "unique_sessions",
    "first_event_at",
    "last_event_at",
    "by_event_type",
    "top_users",
    "top_workbooks",
}


def _top(df: pl.DataFrame, column: str, top: int | None) -> list[dict[str, Any]]:
    counts = df.filter(pl.col(column).is_not_null()).group_by(column).len("count")
    rows = counts.sort(["count", column], descending=[True, False]).to_dicts()
    return rows if top is None else rows[:top]


def _expected(df: pl.DataFrame, top: int) -> dict[str, Any]:
    return {
        "total_events": df.height,
        "unique_users": df["user_name"].drop_nulls().n_unique(),
        "unique_workbooks": df["workbook_name"].drop_nulls().n_unique(),
        "unique_sessions": df["session_id"].drop_nulls().n_unique(),
        "first_event_at": iso(df["timestamp"].min()) if df.height else None,  # type: ignore[arg-type]
        "last_event_at": iso(df["timestamp"].max()) if df.height else None,  # type: ignore[arg-type]
        "by_event_type": _top(df, "event_type", None),
        "top_users": _top(df, "user_name", top),
        "top_workbooks": _top(df, "workbook_name", top),
    }


def test_stats_are_exact(client: TestClient, store: EventStore) -> None:
    table = seed(store, 600)
    store.append(table.slice(100, 50))  # re-sent events change no figure
    df = frame(table)
    r = client.get("/api/stats")
    assert r.status_code == 200
    assert set(r.json()) == KEYS
    assert r.json() == _expected(df, 10)
    user = df["user_name"][3]
    mid = START + dt.timedelta(days=2)
    params = {"user_name": user, "from": iso(mid), "event_type": ["cell_change", "formula_change"], "top": 2}
    sel = df.filter(
        (pl.col("user_name") == user)
        & (pl.col("timestamp") >= mid)
        & pl.col("event_type").is_in(["cell_change", "formula_change"])
    )
    assert client.get("/api/stats", params=params).json() == _expected(sel, 2)


def test_stats_of_nothing(client: TestClient, store: EventStore) -> None:
    seed(store, 10)
    got = client.get("/api/stats", params={"user_name": "nobody"}).json()
    assert got == {
        "total_events": 0,
        "unique_users": 0,
        "unique_workbooks": 0,
        "unique_sessions": 0,
        "first_event_at": None,
        "last_event_at": None,
        "by_event_type": [],
        "top_users": [],
        "top_workbooks": [],
    }
    for bad in ({"top": 0}, {"top": 1001}, {"top": "ten"}, {"from": "not a date"}):
        assert_error(client.get("/api/stats", params=bad), 400, "invalid_query")


def test_timeseries_counts_zero_fill_and_groups(client: TestClient, store: EventStore) -> None:
    df = frame(seed(store, 400))
    r = client.get("/api/stats/timeseries", params={"bucket": "day"})
    assert r.status_code == 200
    body = r.json()
    assert body["bucket"] == "day"
    counts = df.group_by(pl.col("timestamp").dt.truncate("1d").alias("ts")).len("count")
    first, last = counts["ts"].min(), counts["ts"].max()
    days = pl.datetime_range(first, last, "1d", eager=True, time_zone="UTC")  # type: ignore[arg-type]
    want = pl.DataFrame({"ts": days}).join(counts, on="ts", how="left").fill_null(0).sort("ts")
    assert [(s["ts"], s["count"], s["group"]) for s in body["series"]] == [
        (iso(t), c, None) for t, c in want.iter_rows()
    ]
    grouped = client.get("/api/stats/timeseries", params={"bucket": "hour", "group_by": "event_type"}).json()
    groups = {s["group"] for s in grouped["series"]}
    assert groups == set(df["event_type"].unique())
    per_group = {g: sum(s["count"] for s in grouped["series"] if s["group"] == g) for g in groups}
    assert per_group == dict(df.group_by("event_type").len().iter_rows())
    buckets = {s["ts"] for s in grouped["series"]}
    assert len(grouped["series"]) == len(buckets) * len(groups)  # every group gets every bucket
    assert all(s["ts"].endswith(":00:00.000000Z") for s in grouped["series"])


def test_timeseries_bounds_weeks_and_errors(client: TestClient, store: EventStore) -> None:
    seed(store, 100)
    start, end = dt.datetime(2025, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 3, 20, tzinfo=dt.UTC)
    weeks = client.get(
        "/api/stats/timeseries", params={"bucket": "week", "from": iso(start), "to": iso(end)}
    ).json()
    assert [s["ts"] for s in weeks["series"]] == [
        "2025-02-24T00:00:00.000000Z",
        "2025-03-03T00:00:00.000000Z",
        "2025-03-10T00:00:00.000000Z",
        "2025-03-17T00:00:00.000000Z",
    ]
    assert sum(s["count"] for s in weeks["series"]) == 100
    assert client.get("/api/stats/timeseries").json()["bucket"] == "hour"
    for bad in (
        {"bucket": "year"},
        {"group_by": "sheet_name"},
        {"bucket": "day; DROP"},
        {"bucket": ["day", "hour"]},
    ):
        assert_error(client.get("/api/stats/timeseries", params=bad), 400, "invalid_query")
    huge = {"bucket": "minute", "from": "2000-01-01", "to": "2025-01-01"}
    assert_error(client.get("/api/stats/timeseries", params=huge), 400, "invalid_query")
