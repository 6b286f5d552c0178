"""POST /api/exports on every store: partitioned Parquet, manifest with sha256, destinations."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
from fastapi.testclient import TestClient

from storage.base import EventStore
from storage.schema import EVENT_SCHEMA
from tests.api.readkit import START, assert_error, frame, iso, seed


def test_export_writes_verifiable_month_partitions(
    client: TestClient, store: EventStore, tmp_path: Path
) -> None:
    df = frame(seed(store, 200, days=40))  # spans March and April
    r = client.post("/api/exports", json={"eventType": ["cell_change", "formula_change"]})
    assert r.status_code == 200, r.text
    manifest = r.json()
    want = df.filter(pl.col("event_type").is_in(["cell_change", "formula_change"]))
    assert manifest["rows"] == want.height
    destination = Path(manifest["destination"])
    assert destination.parent == tmp_path / "exports"
    assert json.loads((destination / "manifest.json").read_text())["rows"] == want.height
    assert {f["path"].split("/part")[0] for f in manifest["files"]} == {
        "year=2025/month=03",
        "year=2025/month=04",
    }
    total = 0
    for entry in manifest["files"]:
        path = destination / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]
        table = pq.read_table(path, partitioning=None)
        assert table.schema.equals(EVENT_SCHEMA)
        assert table.num_rows == entry["rows"]
        total += table.num_rows
    assert total == want.height
    assert [c["name"] for c in manifest["schema"]] == EVENT_SCHEMA.names


def test_export_window_and_destinations(client: TestClient, store: EventStore, tmp_path: Path) -> None:
    df = frame(seed(store, 100))
    target = tmp_path / "exports" / "mine"
    body = {"from": iso(START), "to": "2025-03-05T00:00:00Z", "destination": "mine"}
    r = client.post("/api/exports", json=body)
    assert r.status_code == 200, r.text
    assert (
        r.json()["rows"] == df.filter(pl.col("timestamp") < pl.datetime(2025, 3, 5, time_zone="UTC")).height
    )
    assert (target / "manifest.json").exists()
    assert_error(client.post("/api/exports", json=body), 409, "destination_exists")
    relative = client.post("/api/exports", json={"destination": "named"})
    assert Path(relative.json()["destination"]) == tmp_path / "exports" / "named"
    s3 = client.post("/api/exports", json={"destination": "s3://bucket/prefix"})
    assert_error(s3, 400, "invalid_destination")  # no object-store prefix is allowed by default
    for bad in (b"[]", b"{nope", b'{"from": "tomorrow-ish"}', b'{"destination": 5}'):
        r = client.post("/api/exports", content=bad, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (bad, r.text)
        assert_error(r, 400)
