"""/live, /ready, /health on every store; the CLI; one end-to-end `govtrack serve` run."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.cli import check_bind, is_loopback
from api.settings import Settings
from storage.base import EventStore
from tests.conftest import FIXTURES
from tests.e2e.server import Server, ServerDirs

GOVTRACK = Path(sys.executable).parent / "govtrack"


def test_live(client: TestClient) -> None:
    assert client.get("/live").status_code == 200


def test_ready_when_store_answers(client: TestClient) -> None:
    resp = client.get("/ready")
    assert resp.status_code == 200
    assert resp.json() == {"status": "ready", "writes_to": "store"}


def test_health_report(client: TestClient, store: EventStore, tmp_path: Path) -> None:
    # The store's probe is bounded (HEALTH_PROBE_TIMEOUT_S): on a machine under heavy load a first,
    # cold probe can miss it and answer "degraded" with that reason; a healthy store answers soon.
    deadline = time.monotonic() + 30
    while True:
        resp = client.get("/health")
        assert resp.status_code == 200
        body = resp.json()
        if body["status"] == "healthy" or time.monotonic() > deadline:
            break
        assert "did not answer within" in str(body["checks"]["store"]["detail"]), body
    assert set(body) == {"status", "version", "uptime_s", "checks"}
    assert body["status"] == "healthy", body
    assert body["version"]
    assert body["uptime_s"] >= 0
    assert set(body["checks"]) == {"store", "spool", "archive"}
    assert body["checks"]["store"]["ok"] is True
    assert body["checks"]["store"]["engine"] == store.name
    assert body["checks"]["spool"]["writable"] is True
    assert body["checks"]["spool"]["depth"] == 0
    assert body["checks"]["archive"]["location"] == str(tmp_path / "archive")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVTRACK_")}
    env.update(extra)
    return env


def test_cli_help_documents_options_and_environment() -> None:
    out = subprocess.run(
        [str(GOVTRACK), "serve", "--help"], capture_output=True, text=True, env=clean_env(), check=True
    )
    for word in ("--host", "--port", "GOVTRACK_STORE_URL", "GOVTRACK_API_KEYS", "GOVTRACK_SPOOL_DIR"):
        assert word in out.stdout
    top = subprocess.run(
        [str(GOVTRACK), "--help"], capture_output=True, text=True, env=clean_env(), check=True
    )
    assert "serve" in top.stdout


def test_cli_refuses_public_bind_without_keys(tmp_path: Path) -> None:
    env = clean_env(
        GOVTRACK_STORE_URL=f"parquet://{tmp_path / 'data'}", GOVTRACK_SPOOL_DIR=str(tmp_path / "s")
    )
    proc = subprocess.run(
        [str(GOVTRACK), "serve", "--host", "0.0.0.0", "--port", "1"],  # noqa: S104 - that is the point
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "bind_refused" in proc.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was opened


@pytest.mark.parametrize(
    ("host", "keys", "allow", "allowed"),
    [
        ("127.0.0.1", "", False, True),
        ("localhost", "", False, True),
        ("::1", "", False, True),
        ("0.0.0.0", "", False, False),  # noqa: S104
        ("10.1.2.3", "", False, False),
        ("0.0.0.0", "k1:ingest", False, True),  # noqa: S104
        ("0.0.0.0", "", True, True),  # noqa: S104
    ],
)
def test_bind_rule(host: str, keys: str, allow: bool, allowed: bool, tmp_path: Path) -> None:
    settings = Settings(
        store_url=str(tmp_path), spool_dir=tmp_path, api_keys=keys, allow_unauthenticated_bind=allow
    )
    assert (check_bind(settings, host) is None) is allowed
    assert is_loopback(host) is (host in ("127.0.0.1", "localhost", "::1"))


def test_api_keys_format_keeps_digests_only() -> None:
    settings = Settings(api_keys="k1:ingest+read,k2")
    assert [(k.digest, sorted(k.scopes)) for k in settings.api_keys] == [
        (hashlib.sha256(b"k1").digest(), ["ingest", "read"]),
        (hashlib.sha256(b"k2").digest(), ["admin", "ingest", "read"]),
    ]
    assert "'k1'" not in repr(settings)
    assert not any(isinstance(v, str) and "k1" in v for k in settings.api_keys for v in vars_of(k))
    with pytest.raises(ValueError, match="scope"):
        Settings(api_keys="k1:write")


def vars_of(obj: Any) -> list[Any]:
    return [getattr(obj, name) for name in getattr(obj, "__slots__", ())]


@pytest.mark.slow
def test_govtrack_serve_end_to_end(tmp_path: Path) -> None:
    dirs = ServerDirs(tmp_path)
    server = Server(dirs, dirs.parquet_url, command=[str(GOVTRACK), "serve"])
    try:
        server.wait_ready()
        resp = httpx.post(
            f"{server.base}/api/events",
            content=(FIXTURES / "addin_batch_pascal.json").read_bytes(),
            headers={"Content-Type": "application/json", "X-Request-ID": "e2e-1"},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["accepted"] == 25
        assert resp.headers["X-Request-ID"] == "e2e-1"
        health = httpx.get(f"{server.base}/health", timeout=30).json()
        assert health["status"] == "healthy"
        assert health["checks"]["store"]["ok"] is True
        code = server.terminate()
    finally:
        server.stop()
    log = server.log_path.read_text()
    assert code == 0, log[-2000:]  # a graceful stop on SIGTERM exits 0
    assert '"event": "stopped"' in log  # the lifespan drained the writer and closed the store
    assert '"request_id": "e2e-1"' in log
