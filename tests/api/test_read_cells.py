"""GET /api/cells/history on every store: newest first, exact fields, required parameters."""

from __future__ import annotations

import polars as pl
from fastapi.testclient import TestClient

from api.routes.cells import CHANGE_COLUMNS
from storage.base import EventStore
from tests.api.readkit import assert_error, frame, iso, seed


def test_cell_history_lists_every_change_newest_first(client: TestClient, store: EventStore) -> None:
    df = frame(seed(store, 500))
    keys = ["workbook_name", "sheet_name", "cell_address"]
    busiest = (
        df.filter(pl.col("cell_address").is_not_null())
        .group_by(keys)
        .len()
        .sort(["len", *keys], descending=True)
    ).row(0, named=True)
    cell = {k: busiest[k] for k in keys}
    assert busiest["len"] >= 2
    want = df.filter(
        (pl.col("workbook_name") == cell["workbook_name"])
        & (pl.col("sheet_name") == cell["sheet_name"])
        & (pl.col("cell_address") == cell["cell_address"])
    ).sort(["timestamp", "event_id"], descending=True)
    r = client.get("/api/cells/history", params=cell)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {*keys, "changes"}
    assert {k: body[k] for k in keys} == cell
    assert [list(c) for c in body["changes"]] == [list(CHANGE_COLUMNS)] * len(want)
    assert [c["event_id"] for c in body["changes"]] == want["event_id"].to_list()
    first = want.row(0, named=True)
    assert body["changes"][0]["timestamp"] == iso(first["timestamp"])
    assert body["changes"][0]["new_value"] == first["new_value"]
    limited = client.get("/api/cells/history", params=cell | {"limit": 1}).json()["changes"]
    assert [c["event_id"] for c in limited] == want["event_id"].to_list()[:1]


def test_cell_history_requires_the_cell_and_tolerates_anything(client: TestClient, store: EventStore) -> None:
    seed(store, 20)
    assert_error(client.get("/api/cells/history"), 400, "invalid_query")
    assert_error(client.get("/api/cells/history", params={"workbook_name": "a", "sheet_name": "b"}), 400)
    cell = {"workbook_name": "a' OR 1=1 --", "sheet_name": "b", "cell_address": "A1"}
    r = client.get("/api/cells/history", params=cell)
    assert r.status_code == 200
    assert r.json()["changes"] == []
    assert_error(client.get("/api/cells/history", params=cell | {"limit": 0}), 400, "invalid_query")
    assert_error(client.get("/api/cells/history", params=cell | {"limit": "x"}), 400, "invalid_query")
