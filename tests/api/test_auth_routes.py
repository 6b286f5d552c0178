"""Every operation of the real app demands the scope the contract gives it; new routes cannot slip by.

The audit is behavioural (requests without a key and with a key lacking the scope), over every
operation in the app's OpenAPI document, so it holds however the routers are wired. An app in
which no operation answers 401 without a key fails here: auth left unwired is a defect, not a skip.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.settings import Settings
from storage.base import EventStore

INGEST_KEY = "routes-ingest-key-0123456789"
READ_KEY = "routes-read-key-0123456789"
ADMIN_KEY = "routes-admin-key-0123456789"
KEYS = {"ingest": INGEST_KEY, "read": READ_KEY, "admin": ADMIN_KEY}
OPEN_ROUTES = frozenset({("GET", "/live"), ("GET", "/ready")})
# Keys that must NOT pass a route needing the scope (admin implies read; nothing implies ingest).
LACKING = {"ingest": ("read", "admin"), "read": ("ingest",), "admin": ("read", "ingest")}
DUMMY_PARAM = "00000000-0000-4000-8000-000000000000"
HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete"})


def expected_scope(method: str, path: str) -> str | None:
    """The contract's rule: /live, /ready open; ingest to post events; admin for exports/archive; else read."""
    if (method, path) in OPEN_ROUTES:
        return None
    if (method, path) == ("POST", "/api/events"):
        return "ingest"
    if path.startswith(("/api/exports", "/api/archive")):
        return "admin"
    return "read"


def operations(client: TestClient) -> list[tuple[str, str]]:
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    return sorted((m.upper(), p) for p, ops in paths.items() for m in ops if m in HTTP_METHODS)


def call(client: TestClient, method: str, path: str, key: str | None = None) -> Any:
    """Auth runs before the handler, so a dummy path parameter and an empty JSON body will do."""
    url = re.sub(r"\{[^}]+\}", DUMMY_PARAM, path)
    headers = {"X-API-Key": key} if key else {}
    body: dict[str, Any] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return client.request(method, url, headers=headers, json=body)


@pytest.fixture
def keyed_client(store: EventStore, tmp_path: Path) -> Iterator[TestClient]:
    from api.app import create_app

    settings = Settings(
        store_url=f"parquet://{tmp_path / 'unused-store'}",
        spool_dir=tmp_path / "spool",
        archive_url=str(tmp_path / "archive"),
        api_keys=f"{INGEST_KEY}:ingest,{READ_KEY}:read,{ADMIN_KEY}:admin",
    )
    with TestClient(create_app(settings, store=store)) as client:
        yield client


def test_keys_configured_means_401_without_one(keyed_client: TestClient) -> None:
    """Auth is wired at all: with keys configured, a keyless call to a guarded operation is refused."""
    unguarded = [(m, p) for m, p in operations(keyed_client) if call(keyed_client, m, p).status_code != 401]
    assert set(unguarded) == OPEN_ROUTES, f"answered without a key: {sorted(set(unguarded) - OPEN_ROUTES)}"


def test_every_operation_demands_its_scope(keyed_client: TestClient) -> None:
    wrong: dict[str, str] = {}
    for method, path in operations(keyed_client):
        scope = expected_scope(method, path)
        status = call(keyed_client, method, path).status_code
        if (status == 401) != (scope is not None):
            wrong[f"{method} {path} without key"] = f"{status}, expected scope {scope}"
        for other in LACKING.get(scope or "", ()):
            status = call(keyed_client, method, path, KEYS[other]).status_code
            if status != 403:
                wrong[f"{method} {path} with {other} key"] = f"{status}, expected 403"
    assert wrong == {}


def test_real_app_admits_the_right_keys(keyed_client: TestClient) -> None:
    assert keyed_client.get("/live").status_code == 200
    body = keyed_client.get("/health").json()
    assert body["error"]["code"] == "unauthorized"
    assert keyed_client.get("/health", headers={"X-API-Key": READ_KEY}).status_code == 200
    assert keyed_client.get("/health", headers={"Authorization": f"Bearer {ADMIN_KEY}"}).status_code == 200
    forbidden = keyed_client.post("/api/events", json={"events": []}, headers={"X-API-Key": READ_KEY})
    assert forbidden.json()["error"]["code"] == "forbidden"
