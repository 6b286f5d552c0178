"""GET /api/sessions and /api/sessions/{id} on every store: figures, filters, header paging, 404."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
from fastapi.testclient import TestClient

from api.routes.sessions import SESSION_FIELDS
from storage.base import EventStore
from tests.api.readkit import START, assert_error, frame, iso, seed


def _sessions(df: pl.DataFrame) -> pl.DataFrame:
    """The oracle: one row per session, newest start first (then session_id desc)."""
    first = df.sort(["timestamp", "event_id"]).group_by("session_id", maintain_order=True).first()
    figures = df.group_by("session_id").agg(
        pl.col("timestamp").min().alias("start_time"),
        pl.col("timestamp").max().alias("end_time"),
        pl.len().alias("event_count"),
        pl.col("workbook_name").drop_nulls().unique().sort().alias("workbooks"),
    )
    joined = figures.join(first.select("session_id", "user_name", "machine_name"), on="session_id")
    return joined.sort(["start_time", "session_id"], descending=True)


def _api(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "session_id": row["session_id"],
        "user_name": row["user_name"],
        "machine_name": row["machine_name"],
        "start_time": iso(row["start_time"]),
        "end_time": iso(row["end_time"]),
        "duration_s": (row["end_time"] - row["start_time"]).total_seconds(),
        "event_count": row["event_count"],
        "workbooks": list(row["workbooks"]),
    }


def _page_all(client: TestClient, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    r = client.get("/api/sessions", params=params)
    while True:
        assert r.status_code == 200, r.text
        assert isinstance(r.json(), list)
        rows.extend(r.json())
        if "x-next-cursor" not in r.headers:
            assert "link" not in r.headers
            return rows
        link = r.headers["link"]
        assert link.endswith('>; rel="next"')
        assert r.headers["x-next-cursor"] in link
        r = client.get(link[1 : link.index(">")])


def test_sessions_figures_and_paging(client: TestClient, store: EventStore) -> None:
    df = frame(seed(store, 300))
    want = [_api(row) for row in _sessions(df).iter_rows(named=True)]
    assert len(want) > 10
    first_page = client.get("/api/sessions").json()
    assert [list(s) for s in first_page] == [list(SESSION_FIELDS)] * len(want)
    assert _close(first_page, want)
    assert _close(_page_all(client, {"limit": 3}), want)


def _close(got: list[dict[str, Any]], want: list[dict[str, Any]]) -> bool:
    strip = [{k: v for k, v in s.items() if k != "duration_s"} for s in got]
    same = strip == [{k: v for k, v in s.items() if k != "duration_s"} for s in want]
    durations = all(abs(g["duration_s"] - w["duration_s"]) < 1e-6 for g, w in zip(got, want, strict=True))
    return same and durations


def test_sessions_filters(client: TestClient, store: EventStore) -> None:
    df = frame(seed(store, 300))
    sessions = _sessions(df)
    user = sessions["user_name"][0]
    by_user = [s for s in client.get("/api/sessions", params={"user_name": user}).json()]
    assert [s["session_id"] for s in by_user] == sessions.filter(pl.col("user_name") == user)[
        "session_id"
    ].to_list()
    lo, hi = START + dt.timedelta(days=1), START + dt.timedelta(days=2)
    in_window = set(df.filter((pl.col("timestamp") >= lo) & (pl.col("timestamp") < hi))["session_id"])
    got = client.get("/api/sessions", params={"from": iso(lo), "to": iso(hi), "limit": 1000}).json()
    assert {s["session_id"] for s in got} == in_window
    assert client.get("/api/sessions", params={"user_name": "' OR 1=1 --"}).json() == []


def test_one_session_and_404(client: TestClient, store: EventStore) -> None:
    df = frame(seed(store, 100))
    row = _sessions(df).row(2, named=True)
    got = client.get(f"/api/sessions/{row['session_id']}")
    assert got.status_code == 200
    body = got.json()
    assert _close([{k: body[k] for k in SESSION_FIELDS}], [_api(row)])
    events = df.filter(pl.col("session_id") == row["session_id"])
    numbers = sorted(events["session_seq"].drop_nulls().to_list())
    assert numbers, "the demo numbers its events"
    assert len(set(numbers)) == len(numbers)  # one event per number: nothing conflicts
    absent = sorted(set(range(max(numbers) + 1)) - set(numbers))
    completeness = {k: v for k, v in body.items() if k not in SESSION_FIELDS}
    assert completeness == {
        "max_seq": max(numbers),
        "missing_count": len(absent),
        "missing_seq": _runs(absent),
        "conflicting_seq": [],
        "has_end": "session_end" in events["event_type"].to_list(),
    }
    assert_error(client.get("/api/sessions/no-such-session"), 404, "not_found")
    assert_error(client.get("/api/sessions/" + "x" * 500), 404, "not_found")


def _runs(numbers: list[int]) -> list[dict[str, int]]:
    """Sorted numbers as runs of consecutive ones: [1, 2, 5] -> 1-2, 5-5."""
    runs: list[dict[str, int]] = []
    for n in numbers:
        if runs and runs[-1]["last"] == n - 1:
            runs[-1]["last"] = n
        else:
            runs.append({"first": n, "last": n})
    return runs


def test_sessions_bad_input_is_400(client: TestClient, store: EventStore) -> None:
    seed(store, 30)
    for bad in (
        {"limit": 0},
        {"limit": 10_001},
        {"from": "soon"},
        {"user_name": ["a", "b"]},
        {"cursor": "junk"},
    ):
        r = client.get("/api/sessions", params=bad)
        assert r.status_code == 400, bad
        assert_error(r, 400)
    token = client.get("/api/sessions", params={"limit": 1}).headers["x-next-cursor"]
    assert_error(
        client.get("/api/sessions", params={"cursor": token, "user_name": "x"}), 400, "invalid_cursor"
    )
    assert_error(client.get("/api/events", params={"cursor": token}), 400, "invalid_cursor")
