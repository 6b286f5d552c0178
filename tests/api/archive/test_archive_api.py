"""The archive over HTTP, on both stores.

Every endpoint answers the same before and after `POST /api/archive`; holds; exports to s3://
(moto) and abfs:// (Azurite); the admin scope.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from api.cli import main
from storage.archive.location import open_location
from storage.archive.verify import verify_archive
from storage.base import EventStore
from tests.api.readkit import assert_error, client_with
from tests.contract.events import table
from tests.objectstores.servers import ObjectStore
from tests.storage.archive.data import MAR, rows

JSON = {"Content-Type": "application/json"}


def _pages(client: TestClient, params: dict[str, Any]) -> list[Any]:
    seen: list[Any] = []
    cursor = None
    while True:
        answer = client.get("/api/events", params={**params, **({"cursor": cursor} if cursor else {})}).json()
        seen.append(answer["events"])
        cursor = answer.get("next_cursor")
        if not cursor:
            return seen


def _sessions(client: TestClient, params: dict[str, Any]) -> list[Any]:
    seen: list[Any] = []
    cursor = None
    while True:
        response = client.get("/api/sessions", params={**params, **({"cursor": cursor} if cursor else {})})
        seen.append(response.json())
        cursor = response.headers.get("X-Next-Cursor")
        if not cursor:
            return seen


def snapshot(client: TestClient, ids: list[str]) -> dict[str, Any]:
    """Every read endpoint's answer over the test data (cursor texts left out: they sign positions)."""
    snap: dict[str, Any] = {}
    windows = [
        {},
        {"from": "2024-02-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"},
        {"from": "2024-01-31T23:59:59.999999Z", "to": "2024-03-01T00:00:00.000001Z"},
    ]
    for i, w in enumerate(windows):
        snap[f"stats{i}"] = client.get("/api/stats", params=w).json()
        for bucket, group in (("hour", None), ("day", "workbook_name"), ("week", "user_name")):
            params = {**w, "bucket": bucket, **({"group_by": group} if group else {})}
            snap[f"series{i}{bucket}{group}"] = client.get("/api/stats/timeseries", params=params).json()
        snap[f"pages{i}"] = _pages(client, {**w, "limit": 23})
        snap[f"asc{i}"] = _pages(client, {**w, "limit": 31, "order": "asc"})
        snap[f"csv{i}"] = client.get(
            "/api/events", params={**w, "limit": 500}, headers={"Accept": "text/csv"}
        ).text
        snap[f"sessions{i}"] = _sessions(client, {**w, "limit": 4})
        body = {**w, "user_name": ["CORP\\u1", "CORP\\edge0"], "limit": 50}
        snap[f"query{i}"] = client.post("/api/events/query", json=body).json()["events"]
    for sid in ("edge-a", "edge-b", "s-2"):
        snap[f"session{sid}"] = client.get(f"/api/sessions/{sid}").json()
    for event_id in ids[::29]:
        snap[f"event{event_id}"] = client.get(f"/api/events/{event_id}").json()
    for cell, book in (("B1", "book1.xlsx"), ("Z9", "book.xlsx")):
        params = {"workbook_name": book, "sheet_name": "Sheet1", "cell_address": cell}
        snap[f"cell{cell}"] = client.get("/api/cells/history", params=params).json()
    return snap


def test_every_endpoint_answers_the_same_after_post_archive(store: EventStore, tmp_path: Path) -> None:
    data = rows(80)
    store.append(table(data))
    ids = sorted(r["event_id"] for r in data)
    with client_with(store, tmp_path) as client:
        before = snapshot(client, ids)
        dry = client.post("/api/archive", json={"before": "2024-03", "dry_run": True}).json()
        assert [(m["month"], m["status"]) for m in dry["months"]] == [
            ("2024-01", "would_move"),
            ("2024-02", "would_move"),
        ]
        moved = client.post("/api/archive", json={"before": "2024-03"})
        assert moved.status_code == 200, moved.text
        assert moved.json()["rows"] == len([r for r in data if r["timestamp"] < MAR])
        assert [m["generation"] for m in moved.json()["months"]] == [1, 1]
        after = snapshot(client, ids)
        changed = sorted(k for k in before if before[k] != after[k])
        assert not changed, f"{changed[:5]}: {before[changed[0]]} != {after[changed[0]]}"
        status = client.get("/api/archive").json()
        assert [(m["month"], m["generation"]) for m in status["months"]] == [("2024-01", 1), ("2024-02", 1)]
        verdict = client.post("/api/archive/verify", headers=JSON).json()
        assert verdict["ok"]
        assert verdict["files_checked"] == 2
        assert client.post("/api/archive", json={"before": "2024-03"}).json()["months"] == []


def test_archive_requests_are_checked(client: TestClient) -> None:
    assert_error(
        client.post("/api/archive", json={}), 400, "invalid_query"
    )  # no ARCHIVE_AFTER_DAYS: before needed
    assert client.post("/api/archive", json={"before": "2024-13"}).status_code in (400, 422)
    assert client.post("/api/archive", json={"before": "soon"}).status_code == 422
    assert client.post("/api/archive", json={"before": "2024-03", "extra": 1}).status_code == 422
    assert_error(
        client.post("/api/archive/verify", params={"month": "May"}, headers=JSON), 400, "invalid_query"
    )
    assert client.post("/api/archive/verify", headers=JSON).json() == {
        "ok": False,
        "months": 0,
        "files_checked": 0,
        "rows": 0,
        "problems": [],
    }


def test_holds_are_placed_listed_and_released(client: TestClient, tmp_path: Path) -> None:
    body = {
        "from": "2024-01-01T00:00:00Z",
        "to": "2024-02-01T00:00:00Z",
        "user_name": "CORP\\u1",
        "reason": "case 7",
    }
    placed = client.post("/api/holds", json=body)
    assert placed.status_code == 201, placed.text
    hold = placed.json()
    assert (hold["from"], hold["to"], hold["user_name"], hold["workbook_name"], hold["released_at"]) == (
        "2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z", "CORP\\u1", None, None,
    )  # fmt: skip
    assert [h["hold_id"] for h in client.get("/api/holds").json()["holds"]] == [hold["hold_id"]]
    assert (tmp_path / "archive" / "_holds" / f"{hold['hold_id']}.json").exists()  # survives restarts
    released = client.delete(f"/api/holds/{hold['hold_id']}", headers=JSON)
    assert released.status_code == 200
    assert released.json()["released_at"]
    assert client.get("/api/holds").json()["holds"] == []
    assert [h["hold_id"] for h in client.get("/api/holds", params={"all": "true"}).json()["holds"]] == [
        hold["hold_id"]
    ]
    assert_error(client.delete(f"/api/holds/{hold['hold_id']}", headers=JSON), 404, "not_found")
    assert_error(client.delete("/api/holds/../../x", headers=JSON), 404)
    assert_error(client.post("/api/holds", json={**body, "to": "2023-01-01"}), 400, "invalid_query")
    assert_error(client.post("/api/holds", json={**body, "from": "yesterday"}), 400, "invalid_query")
    assert client.post("/api/holds", json={"from": "2024-01-01"}).status_code == 422


def test_archive_and_holds_need_the_admin_scope(store: EventStore, tmp_path: Path) -> None:
    with client_with(store, tmp_path, api_keys="r3ader:read,adm1n:admin") as client:
        reader = {"X-API-Key": "r3ader", **JSON}
        assert_error(client.post("/api/archive", json={"before": "2024-03"}, headers=reader), 403)
        assert_error(client.get("/api/holds", headers=reader), 403)
        assert client.get("/api/holds", headers={"X-API-Key": "adm1n"}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("where", ["s3", "azure"])
def test_exports_go_to_object_stores_and_never_overwrite(
    store: EventStore, tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    objects: ObjectStore = request.getfixturevalue(where)
    data = rows(60)
    store.append(table(data))
    url = objects.new_url()
    scheme, rest = url.split("://")
    options = objects.options
    overrides: dict[str, Any] = {"export_url_prefixes": f"{scheme}://{rest.split('/')[0]}/"}
    if where == "s3":
        overrides |= {"s3_endpoint_url": options.s3_endpoint_url, "s3_region": "us-east-1"}
    else:
        overrides |= {
            "azure_account_name": options.azure_account_name,
            "azure_account_key": options.azure_account_key,
            "azure_blob_endpoint": options.azure_blob_endpoint,
        }
    with client_with(store, tmp_path, **overrides) as client:
        client.post("/api/archive", json={"before": "2024-02"})  # January from the archive, the rest hot
        answer = client.post(
            "/api/exports", json={"destination": f"{url}/one", "from": "2024-01-20T00:00:00Z"}
        )
        assert answer.status_code == 200, answer.text
        manifest = answer.json()
        location = open_location(f"{url}/one", options)
        assert json.loads(location.read_bytes("manifest.json"))["files"] == manifest["files"]
        want = sorted(r["event_id"] for r in data if r["timestamp"].isoformat() >= "2024-01-20")
        got = []
        for entry in manifest["files"]:
            assert location.sha256(entry["path"]) == (entry["sha256"], entry["bytes"])
            got += (
                pq.read_table(location.full(entry["path"]), filesystem=location.fs)
                .column("event_id")
                .to_pylist()
            )
        assert sorted(got) == want
        assert manifest["rows"] == len(want)
        assert_error(
            client.post("/api/exports", json={"destination": f"{url}/one"}), 409, "destination_exists"
        )
        missing = url.replace(rest.split("/")[0], "gt-no-such-bucket")
        overrides["export_url_prefixes"] = f"{scheme}://gt-no-such-bucket/"
    with client_with(store, tmp_path, **overrides) as client:
        failed = client.post("/api/exports", json={"destination": f"{missing}/two"})
        assert_error(failed, 503, "destination_unavailable")


def test_exports_stay_beside_the_archive_which_still_verifies(
    store: EventStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An export inside the archive made `govtrack verify ARCHIVE --partial` see its events twice."""
    store.append(table(rows(60)))
    with client_with(store, tmp_path) as client:
        assert client.post("/api/archive", json={"before": "2024-03"}).status_code == 200
        exported = client.post("/api/exports", json={})
        assert exported.status_code == 200, exported.text
        destination = Path(exported.json()["destination"])
        vkey = client.get("/api/log/key").text.strip()
    archive = tmp_path / "archive"
    assert destination.parent == tmp_path / "exports"  # the default: beside the archive
    assert main(["verify", str(archive), "--key", vkey, "--partial"]) == 0, capsys.readouterr().out

    # an archive holding an export from before (the old default was <archive>/exports): both
    # verifiers read only the archive's year=YYYY/month=MM/ tree, and say what they left out
    shutil.copytree(destination, archive / "exports" / "old")
    capsys.readouterr()
    assert main(["verify", str(archive), "--key", vkey, "--partial"]) == 0
    out = capsys.readouterr().out
    assert "not checked: " in out
    assert "exports/old/" in out
    assert verify_archive(open_location(str(archive))).ok
