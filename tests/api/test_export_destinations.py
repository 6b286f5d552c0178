"""POST /api/exports writes only inside the exports folder, exclusively, on every store.

An admin's `destination` used to be any path: `../../x`, an absolute path or a `file://` URL
wrote Parquet outside the exports folder, and a 409 for an existing path told whether
`/etc/passwd` exists. Now: a relative path inside the root (default `exports` beside the archive), or a URL
under an allow-listed prefix; everything else is one and the same 400 `invalid_destination`,
decided without looking at the file system; the export directory is created exclusively.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from storage.base import EventStore
from tests.api.readkit import assert_error, client_with, seed
from tests.faults import PausingExports


def _files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*")) if path.exists() else []


def _error(response: Any) -> tuple[int, str, str]:
    body = json.loads(response.content)
    return response.status_code, body["error"]["code"], body["error"]["message"]


@pytest.mark.parametrize(
    "destination",
    [
        "../../escaped-rel",
        "../escaped",
        "a/../../escaped",
        "ok/./../../escaped",
        "ABSOLUTE",
        "file://ABSOLUTE",
        "file:///etc",
        "s3://bucket/prefix",
        "abfs://container@account.dfs.core.windows.net/x",
        "http://evil.example/x",
        "C:\\exports\\x",
        "a\\..\\..\\x",
        "",
        ".",
    ],
)
def test_destinations_outside_the_root_are_refused(
    client: TestClient, store: EventStore, tmp_path: Path, destination: str
) -> None:
    seed(store, 20)
    outside = tmp_path / "escaped-target"
    destination = destination.replace("ABSOLUTE", str(outside))
    before = _files_under(tmp_path)
    r = client.post("/api/exports", json={"destination": destination})
    assert_error(r, 400, "invalid_destination")
    assert not outside.exists()
    assert not (tmp_path / "escaped-rel").exists()
    assert not (tmp_path / "escaped").exists()
    assert [p for p in _files_under(tmp_path) if p not in before and "archive" not in p.parts] == []
    assert not any(p.name == "manifest.json" for p in _files_under(tmp_path))


def test_the_answer_does_not_tell_whether_an_outside_path_exists(
    client: TestClient, store: EventStore, tmp_path: Path
) -> None:
    seed(store, 5)
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "secret").write_text("x")
    answers = {
        _error(client.post("/api/exports", json={"destination": destination}))
        for destination in (
            "/etc/passwd",
            "/etc/no-such-file-here",
            str(tmp_path / "there"),
            str(tmp_path / "nowhere"),
            "../../there",
            "../../nowhere",
            "file:///etc/passwd",
            "file:///etc/no-such-file-here",
        )
    }
    assert len(answers) == 1, answers
    assert answers.pop()[:2] == (400, "invalid_destination")


def test_symlinks_out_of_the_root_are_refused(client: TestClient, store: EventStore, tmp_path: Path) -> None:
    seed(store, 5)
    root = tmp_path / "exports"
    root.mkdir(parents=True, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside, target_is_directory=True)
    for destination in ("link", "link/sub", "link/sub/deeper"):
        assert_error(
            client.post("/api/exports", json={"destination": destination}), 400, "invalid_destination"
        )
    assert list(outside.iterdir()) == []


def test_relative_destinations_land_inside_the_root_and_never_twice(
    client: TestClient, store: EventStore, tmp_path: Path
) -> None:
    seed(store, 30)
    root = tmp_path / "exports"
    first = client.post("/api/exports", json={"destination": "team/q1"})
    assert first.status_code == 200, first.text
    assert Path(first.json()["destination"]) == root / "team" / "q1"
    assert (root / "team" / "q1" / "manifest.json").exists()
    assert_error(client.post("/api/exports", json={"destination": "team/q1"}), 409, "destination_exists")
    (root / "empty").mkdir()  # an existing directory is never shared, even an empty one
    assert_error(client.post("/api/exports", json={"destination": "empty"}), 409, "destination_exists")
    assert list((root / "empty").iterdir()) == []
    sibling = client.post("/api/exports", json={"destination": "team/q2"})
    assert sibling.status_code == 200, sibling.text
    fresh = [client.post("/api/exports", json={}).json()["destination"] for _ in range(3)]
    assert len(set(fresh)) == 3
    assert all(Path(d).parent == root for d in fresh)


def test_an_absent_root_is_created_and_a_configured_root_is_used(store: EventStore, tmp_path: Path) -> None:
    seed(store, 10)
    root = tmp_path / "configured" / "exports"
    with client_with(store, tmp_path, exports_dir=root) as client:
        r = client.post("/api/exports", json={"destination": "one"})
        assert r.status_code == 200, r.text
        assert Path(r.json()["destination"]) == root / "one"
        default = client.post("/api/exports", json={})
        assert Path(default.json()["destination"]).parent == root


def test_urls_outside_the_allow_list_are_invalid(store: EventStore, tmp_path: Path) -> None:
    seed(store, 5)
    # An S3 endpoint on a closed loopback port: no request ever leaves the machine.
    closed = "http://127.0.0.1:9"
    with client_with(
        store, tmp_path, export_url_prefixes=("s3://allowed/exports/",), s3_endpoint_url=closed
    ) as client:
        for destination in (
            "s3://other/exports/x",
            "s3://allowed/exportsX/x",
            "s3://allowed/exports/../../other/x",
            "s3://allowed/exports/%2e%2e/x",
            "abfs://allowed/exports/x",
        ):
            r = client.post("/api/exports", json={"destination": destination})
            assert_error(r, 400, "invalid_destination")
        # Allowed: written to object storage (issue 10); unreachable here, so 503, never a 500 or a local write.
        r = client.post("/api/exports", json={"destination": "s3://allowed/exports/x"})
        assert_error(r, 503, "destination_unavailable")
        assert not (Path.cwd() / "s3:").exists()


def test_two_exports_never_share_a_directory(store: EventStore, tmp_path: Path) -> None:
    seed(store, 40)
    pausing = PausingExports(store)
    with client_with(pausing, tmp_path) as client:
        answers: list[int] = []
        first = threading.Thread(
            target=lambda: answers.append(
                client.post("/api/exports", json={"destination": "same"}).status_code
            )
        )
        first.start()
        try:
            assert pausing.entered.wait(30)
            second = client.post("/api/exports", json={"destination": "same"})
        finally:
            pausing.release.set()
            first.join(30)
        assert_error(second, 409, "destination_exists")
        assert answers == [200]
    manifest = json.loads((tmp_path / "exports" / "same" / "manifest.json").read_text())
    assert manifest["rows"] == 40
    assert sorted(os.listdir(tmp_path / "exports" / "same")) == ["manifest.json", "year=2025"]
