"""API keys in the real app on every store: 401/403/200 per scope, keys file, hashed keys, logs."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.cli import check_bind
from storage.base import EventStore
from tests.api.faultkit import post_pascal, settings_for

INGEST_KEY = "app-ingest-key-0123456789"
READ_KEY = "app-read-key-0123456789"
ADMIN_KEY = "app-admin-key-0123456789"
FILE_KEY = "file-ingest-key-0123456789"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def keyed(store: EventStore, tmp_path: Path, **overrides: Any) -> TestClient:
    return TestClient(create_app(settings_for(tmp_path, **overrides), store=store))


def with_key(key: str) -> dict[str, str]:
    return {"X-API-Key": key}


def test_scopes_on_ingest_read_admin_and_ops(store: EventStore, tmp_path: Path) -> None:
    keys = f"{INGEST_KEY}:ingest,{READ_KEY}:read,{ADMIN_KEY}:admin"
    with keyed(store, tmp_path, api_keys=keys) as client:
        assert client.get("/live").status_code == 200
        assert client.get("/ready").status_code == 200
        assert post_pascal(client).status_code == 401
        assert post_pascal(client, **with_key(READ_KEY)).status_code == 403
        assert post_pascal(client, **with_key(ADMIN_KEY)).status_code == 403
        assert post_pascal(client, **with_key("not-a-key-0123456789")).status_code == 401
        assert post_pascal(client, **with_key(INGEST_KEY)).status_code == 200
        for path in ("/api/events", "/api/stats", "/api/sessions", "/health", "/metrics"):
            assert client.get(path).status_code == 401, path
            assert client.get(path, headers=with_key(INGEST_KEY)).status_code == 403, path
            assert client.get(path, headers=with_key(READ_KEY)).status_code == 200, path
            bearer = {"Authorization": f"Bearer {ADMIN_KEY}"}
            assert client.get(path, headers=bearer).status_code == 200, path  # admin implies read
        export = {"from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z"}
        assert client.post("/api/exports", json=export, headers=with_key(READ_KEY)).status_code == 403
        resp = client.post("/api/exports", json=export, headers=with_key(ADMIN_KEY))
        assert resp.status_code == 200, resp.text


def test_keys_file_and_hashed_keys(store: EventStore, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"# operators' keys\nsha256:{sha(FILE_KEY)} ingest\n\n{READ_KEY} read\n")
    hashed_env = f"sha256:{sha(ADMIN_KEY)}:admin"
    with keyed(store, tmp_path, api_keys=hashed_env, api_keys_file=keys_file) as client:
        assert post_pascal(client, **with_key(FILE_KEY)).status_code == 200
        assert client.get("/api/stats", headers=with_key(READ_KEY)).status_code == 200
        assert client.get("/api/stats", headers=with_key(ADMIN_KEY)).status_code == 200
        assert post_pascal(client, **with_key(ADMIN_KEY)).status_code == 403
        assert post_pascal(client, **with_key(sha(FILE_KEY))).status_code == 401  # the digest is no key


def test_bad_keys_file_fails_at_create_app(store: EventStore, tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("some-key write\n")
    with pytest.raises(ValueError, match="line 1"):
        create_app(settings_for(tmp_path, api_keys_file=keys_file), store=store)


def test_keys_file_counts_for_the_bind_rule(tmp_path: Path) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text(f"{FILE_KEY} ingest\n")
    assert check_bind(settings_for(tmp_path), "0.0.0.0") is not None  # noqa: S104
    assert check_bind(settings_for(tmp_path, api_keys_file=keys_file), "0.0.0.0") is None  # noqa: S104


def test_access_log_names_the_key_id_never_the_key(
    store: EventStore, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = f"{INGEST_KEY}:ingest,{READ_KEY}:read"
    with keyed(store, tmp_path, api_keys=keys) as client:
        assert post_pascal(client, **with_key(INGEST_KEY)).status_code == 200
        assert client.get("/api/stats", headers={"Authorization": f"Bearer {READ_KEY}"}).status_code == 200
        assert client.get("/api/stats", headers=with_key(INGEST_KEY)).status_code == 403
        assert client.get("/api/stats", headers=with_key("wrong-key-0123456789")).status_code == 401
    out = capsys.readouterr()
    text = caplog.text + out.out + out.err + "".join(str(r.msg) for r in caplog.records)
    for key in (INGEST_KEY, READ_KEY, "wrong-key-0123456789"):
        assert key not in text
    access = [line for line in text.splitlines() if "path=/api/stats" in line and "status=403" in line]
    assert access  # who (key id), what (method, path), status
    assert f"principal={sha(INGEST_KEY)[:8]}" in access[0]
    assert "method=GET" in access[0]
