"""GET /api/stats/timeseries: the points cap (GOVTRACK_MAX_SERIES_POINTS) and the exact JSON, every store."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from fastapi.testclient import TestClient

from storage.base import EventStore
from tests.api.readkit import assert_error, client_with
from tests.contract.events import BASE, event, table

H = dt.timedelta(hours=1)


def _iso(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_points_over_the_setting_are_a_400(store: EventStore, tmp_path: Path) -> None:
    store.append(table([event(i, user_name=f"u{i}", timestamp=BASE + (i % 24) * H) for i in range(6)]))
    window = {"from": _iso(BASE), "to": _iso(BASE + 24 * H), "bucket": "hour"}
    with client_with(store, tmp_path, max_series_points=100) as client:
        refused = client.get("/api/stats/timeseries", params=window | {"group_by": "user_name"})
        assert_error(refused, 400, "invalid_query")
        assert "144 points" in refused.json()["error"]["message"]  # 24 buckets x 6 users
        assert "100" in refused.json()["error"]["message"]
        fine = client.get("/api/stats/timeseries", params=window)
        assert fine.status_code == 200
        assert len(fine.json()["series"]) == 24
        one = client.get(
            "/api/stats/timeseries", params=window | {"group_by": "user_name", "user_name": "u2"}
        )
        assert [s["count"] for s in one.json()["series"]] == [0, 0, 1] + [0] * 21


def test_the_hostile_grid_is_refused_at_the_default_cap(client: TestClient, store: EventStore) -> None:
    """5,200 minute buckets x 701 users: 3.6M points, once 26 s and 3.2 GB to build, now a 400."""
    store.append(table([event(i, user_name=f"u{i:04d}", timestamp=BASE + (i % 80) * H) for i in range(701)]))
    params = {
        "bucket": "minute",
        "group_by": "user_name",
        "from": _iso(BASE),
        "to": _iso(BASE + dt.timedelta(minutes=5_200)),
    }
    r = client.get("/api/stats/timeseries", params=params)
    assert_error(r, 400, "invalid_query")
    assert "250,000" in r.json()["error"]["message"]


def test_series_json_is_exact_for_awkward_group_names(client: TestClient, store: EventStore) -> None:
    names = ['quo"te', "back\\slash", "tab\tand\nnewline", "ünïcødé €", "\x01ctl", None]
    rows = [event(i, workbook_name=name, timestamp=BASE + i * H) for i, name in enumerate(names)]
    store.append(table(rows))
    params = {"bucket": "hour", "group_by": "workbook_name", "from": _iso(BASE), "to": _iso(BASE + 6 * H)}
    r = client.get("/api/stats/timeseries", params=params)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    body = json.loads(r.content)
    ordered = [*sorted(n for n in names if n is not None), None]  # groups sorted, null last
    want = [
        {"ts": _iso(BASE + b * H), "count": int(names[b] == g), "group": g} for b in range(6) for g in ordered
    ]
    assert body == {"bucket": "hour", "series": want}
    assert list(body["series"][0]) == ["ts", "count", "group"]
    empty = client.get("/api/stats/timeseries", params={"user_name": "nobody"})
    assert empty.json() == {"bucket": "hour", "series": []}
